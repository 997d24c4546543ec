"""The `ganjax` command: `ganjax train`, `sample`, `eval`, `train-features`. It only parses
arguments."""

import argparse
import os
import sys

from ganjax.errors import ConfigError, GanjaxError

_EPILOG = """config overrides: any key as --config.SECTION.KEY=VALUE, e.g.
  ganjax train --config configs/dcgan_mnist.py --workdir runs/a --config.optim.g_lr=1e-4
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='ganjax', description='GAN research in JAX.',
                                     epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    train = sub.add_parser('train', help='train a GAN, or resume the run in --workdir',
                           epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument('--config', help='config file (configs/*.py); omit to resume --workdir '
                                        'with its saved config')
    train.add_argument('--workdir', required=True, help='folder of the run')
    sample = sub.add_parser('sample', help="write a PNG of samples from a run's EMA generator")
    sample.add_argument('--workdir', required=True)
    sample.add_argument('--num', type=int, default=64, help='number of samples')
    sample.add_argument('--out', required=True, help='output file: .png picture, or .npy array '
                                                     "in the data's own units and dtype")
    sample.add_argument('--seed', type=int, default=0, help='seed of the latent noise')
    sample.add_argument('--step', type=int, default=None, help='checkpoint step (latest if unset)')
    sample.add_argument('--best', action='store_true',
                        help='use the best checkpoint (WORKDIR/best) kept by evaluation during '
                             'training')
    evaluate = sub.add_parser('eval', help="FID, KID, precision/recall of a run's EMA generator "
                                           'against the held-out split, beside real vs real')
    evaluate.add_argument('--workdir', required=True)
    evaluate.add_argument('--num', type=int, default=5000, help='samples (at most the held-out '
                                                                'split)')
    evaluate.add_argument('--features', default='', choices=('', 'auto', 'raw', 'classifier',
                                                             'inception'),
                          help="feature extractor (default: the run's eval.features)")
    evaluate.add_argument('--features_dir', default='',
                          help='feature classifier folder (default: features/<dataset>, e.g. '
                               'features/tfds_cifar10)')
    evaluate.add_argument('--inception_weights', default='',
                          help='FID Inception weights (.npz from ganjax.metrics.convert_inception;'
                               ' default: $GANJAX_INCEPTION_WEIGHTS or ~/.cache/ganjax/)')
    evaluate.add_argument('--step', type=int, default=None, help='checkpoint step (latest if '
                                                                 'unset)')
    evaluate.add_argument('--best', action='store_true', help='evaluate the best checkpoint '
                                                              '(WORKDIR/best)')
    features = sub.add_parser(
        'train-features', help='train the classifier whose features serve "classifier FID"')
    features.add_argument('--dataset', required=True, help='a data.name of ganjax.data.DATASETS')
    features.add_argument('--out', default='',
                          help='output folder (default: features/<dataset>, e.g. '
                               'features/mnist_5k, features/tfds_cifar10)')
    features.add_argument('--epochs', type=int, default=20)
    features.add_argument('--seed', type=int, default=0)
    return parser


def _train_features(args, extra) -> None:
    from ganjax import config as config_lib
    from ganjax.metrics import features

    overrides = config_lib.parse_override_args(extra)
    config = config_lib.default_config()
    config.data.name = args.dataset
    config_lib.apply_overrides(config, overrides)
    config_lib.validate(config)
    if args.epochs <= 0:
        raise ConfigError(f'--epochs must be positive, got {args.epochs}')
    out = args.out or features.default_features_dir(config.data)
    features.train_classifier(config.data, out, epochs=args.epochs, seed=args.seed,
                              log=lambda m: print(f'[ganjax] {m}', flush=True))


def _eval(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    if args.num <= 0:
        raise ConfigError(f'--num must be positive, got {args.num}')
    from ganjax import evaluate

    result = evaluate.evaluate(args.workdir, args.num, args.features_dir, args.step,
                               features=args.features, inception_weights=args.inception_weights,
                               best=args.best)
    print(evaluate.format_table(result))
    print(f"[ganjax] wrote {result['path']}")


def _train(args, extra) -> None:
    from ganjax import config as config_lib
    from ganjax import train as train_lib

    overrides = config_lib.parse_override_args(extra)
    if args.config:
        config = config_lib.load_config_file(args.config)
    else:
        config = train_lib.load_workdir_config(args.workdir)
    config_lib.apply_overrides(config, overrides)
    train_lib.train_and_evaluate(config, args.workdir)


def _sample(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    if args.num <= 0:
        raise ConfigError(f'--num must be positive, got {args.num}')
    import jax
    import numpy as np

    from ganjax import images
    from ganjax import train as train_lib
    from ganjax.train_step import make_generate_fn, sample_latent

    _, gan, state = train_lib.load_run(args.workdir, args.step, best=args.best)
    z = sample_latent(jax.random.PRNGKey(args.seed), args.num, gan.latent_dim)
    # A conditional generator's samples cycle through the classes.
    y = np.arange(args.num, dtype=np.int32) % gan.num_classes if gan.num_classes else None
    x = np.asarray(jax.jit(make_generate_fn(gan))(state.ema_params, state.g_state, z, y))
    if args.out.endswith('.npy'):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        np.save(args.out, train_lib.load_scaling(args.workdir).to_data(x))
    else:
        images.save_png(images.samples_figure(x), args.out)
    print(f'[ganjax] wrote {args.num} samples from step {int(state.step)} to {args.out}')


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ganjax` console command.

    Args:
      argv: arguments without the program name (sys.argv[1:] if None).

    Returns:
      The exit status: 0 on success, 2 for a config error, 1 for a data or training error.
    """
    args, extra = _parser().parse_known_args(argv)
    commands = {'train': _train, 'sample': _sample, 'train-features': _train_features,
                'eval': _eval}
    try:
        commands[args.command](args, extra)
    except ConfigError as e:
        print(f'ganjax: config error: {e}', file=sys.stderr)
        return 2
    except GanjaxError as e:
        print(f'ganjax: error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
