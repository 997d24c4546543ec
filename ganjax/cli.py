"""The `ganjax` command: `ganjax train`, `sample`, `eval`, `train-features`. It only parses
arguments."""

import argparse
import errno
import functools
import json
import os
import signal
import sys
import threading

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
    sweep = sub.add_parser('sweep', help='train a population of GANs (the config\'s sweep '
                                         'section: variants x settings x seeds), or resume the '
                                         'sweep in --workdir',
                           epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument('--config', help='config file with a sweep section; omit to resume '
                                        '--workdir with its saved config')
    sweep.add_argument('--workdir', required=True, help='folder of the sweep')
    export = sub.add_parser('export', help='write one member of a sweep as an ordinary run that '
                                           '`ganjax train` resumes')
    export.add_argument('--workdir', required=True, help='folder of the sweep')
    export.add_argument('--member', type=int, required=True, help='member index (DIR/members/NNN)')
    export.add_argument('--out', required=True, help='new run folder')
    sample = sub.add_parser('sample', help="write samples of a run's EMA generator: a picture, "
                                           'arrays, or a folder of image files')
    sample.add_argument('--workdir', required=True)
    sample.add_argument('--member', type=int, default=None,
                        help='a sweep\'s member (--workdir is the sweep): the same as --workdir '
                             'DIR/members/NNN')
    sample.add_argument('--num', type=int, default=None, help='number of samples (default 64)')
    sample.add_argument('--class', dest='class_', default=None, metavar='K',
                        help='conditional runs: draw every sample of class K (an index, or a name '
                             'of the run\'s classes, e.g. a subfolder name of an image folder)')
    sample.add_argument('--per-class', type=int, default=None, metavar='N',
                        help='conditional runs: N samples of every class; a picture has a row '
                             'per class')
    sample.add_argument('--out', required=True,
                        help='output: a picture (.png, .jpg, .webp, .tif, .bmp, .gif, as the '
                             'extension says); .npy, the samples as one array in the data\'s own '
                             'units and dtype; .npz, that array as "x" with int32 "label" (the '
                             'class of each sample, -1 for an unconditional run) and '
                             '"class_names"; a file of the data\'s own kind (tables: .h5ad, '
                             'AnnData with the genes and cell types, or .csv with a header; '
                             'ganjax.writers); or a name without extension, a new folder of one '
                             'image file per sample (8-bit: PNG, else TIFF) in a subfolder per '
                             'class named by the class: a data.name=image_folder dataset')
    sample.add_argument('--seed', type=int, default=0, help='seed of the latent noise')
    sample.add_argument('--decode', choices=('argmax', 'sample'), default=None,
                        help='FASTA (.fa): the most probable base at each position, or bases '
                             'drawn from the generator\'s probabilities with --seed (default: '
                             'the run\'s data.seq_decode)')
    sample.add_argument('--step', type=int, default=None, help='checkpoint step (latest if unset)')
    sample.add_argument('--best', action='store_true',
                        help='use the best checkpoint (WORKDIR/best) kept by evaluation during '
                             'training')
    evaluate = sub.add_parser('eval', help="FID, KID, precision/recall of a run's EMA generator "
                                           'against the held-out split, beside real vs real')
    evaluate.add_argument('--workdir', required=True)
    evaluate.add_argument('--member', type=int, default=None,
                          help="a sweep's member (--workdir is the sweep)")
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
    classify = sub.add_parser(
        'classify', help="classify and count examples with the class head of a run's "
                         "discriminator (model.d_head 'acgan' or 'kplus1')")
    classify.add_argument('--workdir', required=True)
    classify.add_argument('--input', required=True,
                          help='a folder of images (class subfolders named like the run\'s '
                               'classes add accuracy), one image, or a .npy/.npz array of '
                               'examples in the data\'s own units')
    classify.add_argument('--out', required=True,
                          help='predictions CSV; the per-class counts go to <name>_counts.csv')
    classify.add_argument('--step', type=int, default=None, help='checkpoint step (latest if '
                                                                 'unset)')
    classify.add_argument('--best', action='store_true', help='use the best checkpoint')
    classify.add_argument('--batch_size', type=int, default=256)
    report = sub.add_parser('report', help='markdown report with PNG plots of a sweep: each '
                                           'variant at its best setting, over seeds')
    report.add_argument('--workdir', required=True, help='folder of `ganjax sweep`')
    report.add_argument('--metric', default=None,
                        help="primary metric, which chooses each variant's best setting "
                             "(default: the sweep's eval.best_metric, else fid)")
    report.add_argument('--out', default=None,
                        help='markdown file (default WORKDIR/report.md); pictures go to a folder '
                             'beside it named like it without .md')
    features = sub.add_parser(
        'train-features', help='train the classifier whose features serve "classifier FID"')
    features.add_argument('--dataset', required=True, help='a data.name of ganjax.data.DATASETS')
    features.add_argument('--out', default='',
                          help='output folder (default: features/<dataset>, e.g. '
                               'features/mnist_5k, features/tfds_cifar10)')
    features.add_argument('--epochs', type=int, default=20)
    features.add_argument('--seed', type=int, default=0)
    return parser


def _exit_on_signal(hint: str, signum: int, frame) -> None:
    """Ends the process at once with one line (`hint` appended), as the default action would
    without a word.

    Raising an exception here instead is unsafe: the signal may arrive inside a callback from C++
    (importing jaxlib aborts the process) or inside a garbage-collection callback (the exception
    is printed and ignored, and the run goes on). Before the training loop nothing is half-written
    that an abrupt end can corrupt: the run directory's files are written atomically.
    """
    what = 'interrupted by Ctrl-C' if signum == signal.SIGINT else (
        f'stopped by {signal.Signals(signum).name}')
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pylint: disable=broad-except  (a write the signal interrupted)
            pass
    os.write(2, f'ganjax: {what}{hint}\n'.encode())
    os._exit(128 + signum)


def _check_workdir(workdir: str, write: bool, exist: bool) -> None:
    """Refuses, in one line, a --workdir that cannot hold a run, before anything is loaded.

    Args:
      workdir: the --workdir argument.
      write: the command writes there (creating it if needed).
      exist: the command reads a run there, so the folder must exist.

    Raises:
      GanjaxError: for a file, a folder under a file, a missing folder or one without write
        permission.
      ConfigError: for a config.json there that is not a readable config.
    """
    from ganjax import config as config_lib

    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise GanjaxError(f'--workdir {workdir} is a file, not a folder')
    if exist and not os.path.exists(path):
        raise GanjaxError(f'--workdir {workdir} does not exist')
    if write:
        _check_can_write(path, f'--workdir {workdir}')
    saved = os.path.join(path, 'config.json')
    if os.path.isfile(saved):
        try:
            config_lib.load_json_file(saved)
        except ConfigError as e:
            raise ConfigError(f'{e}; it records the run in {workdir}: repair it, or start a new '
                              'run in another --workdir') from None
    info = os.path.join(path, 'run_info.json')
    if exist and os.path.isfile(info):
        try:
            with open(info, encoding='utf-8') as f:
                json.load(f)
        except ValueError as e:
            raise GanjaxError(f'{info} is not valid JSON ({e}); resuming the run (`ganjax train '
                              f'--workdir {workdir}`) writes it again') from None


def _check_can_write(path: str, name: str) -> None:
    """Raises GanjaxError unless folder `path` exists writable or can be created.

    Args:
      path: a folder.
      name: how the message names it (e.g. '--workdir runs/a').
    """
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise GanjaxError(f'{name} lies under {existing}, which is a file, not a folder')
    # os.access asks the kernel: root passes on a writable folder, anyone fails on a read-only
    # mount.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GanjaxError(f'{name}: no permission to write in {existing}')


def _check_checkpoint(workdir: str, step: int | None, best: bool) -> None:
    """Refuses, in one line, a run without the asked-for checkpoint, naming those it has.

    Args:
      workdir: the run's folder (checked by `_check_workdir`).
      step: the --step asked for; None for the latest.
      best: --best: look in WORKDIR/best.

    Raises:
      GanjaxError: when there is no checkpoint, or none at `step`.
    """
    if not os.path.isfile(os.path.join(workdir, 'config.json')):
        return  # no run at all: load_run says so, before it creates anything
    import orbax.checkpoint as ocp

    folder = os.path.join(workdir, 'best' if best else 'checkpoints')
    member = os.path.join(workdir, 'member.json')
    if not best and os.path.isfile(member):
        # A sweep member's state lives in its program's checkpoint.
        with open(member, encoding='utf-8') as f:
            folder = os.path.normpath(os.path.join(workdir, json.load(f)['program']['checkpoints']))
    # Only finished checkpoints count (orbax skips its *.orbax-checkpoint-tmp-* folders).
    steps = sorted(ocp.utils.checkpoint_steps(folder)) if os.path.isdir(folder) else []
    if not steps and best:
        raise GanjaxError(f'{workdir} has no best checkpoint (a run keeps one when it evaluates '
                          'during training: eval.every > 0 and eval.best_metric set)')
    if not steps:
        raise GanjaxError(f'{workdir} has no checkpoint yet (a run writes its first one after '
                          'train.checkpoint_every steps)')
    if step is not None and step not in steps:
        raise GanjaxError(f'--step {step}: {folder} has no checkpoint at step {step}; it has '
                          f'step{"s" if len(steps) > 1 else ""} {", ".join(map(str, steps))}')


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
    _member_workdir(args)
    _check_workdir(args.workdir, write=True, exist=True)
    _check_checkpoint(args.workdir, args.step, args.best)
    from ganjax import evaluate

    result = evaluate.evaluate(args.workdir, args.num, args.features_dir, args.step,
                               features=args.features, inception_weights=args.inception_weights,
                               best=args.best)
    print(evaluate.format_table(result))
    print(f"[ganjax] wrote {result['path']}")


def _member_workdir(args) -> None:
    """Points args.workdir at DIR/members/NNN for --member N (sample, eval)."""
    if getattr(args, 'member', None) is None:
        return
    folder = os.path.join(args.workdir, 'members', f'{args.member:03d}')
    if not os.path.isfile(os.path.join(folder, 'member.json')):
        raise ConfigError(f'--member {args.member}: {args.workdir} has no sweep member '
                          f'{args.member} ({folder} is missing)')
    args.workdir = folder


def _sweep(args, extra) -> None:
    config = _command_config(args, extra)
    from ganjax import population

    population.train_sweep(config, args.workdir)


def _export(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    _check_workdir(args.workdir, write=False, exist=True)
    from ganjax import population

    out = population.export_member(args.workdir, args.member, args.out)
    print(f'[ganjax] wrote member {args.member} as a run in {out}; continue it with '
          f'`ganjax train --workdir {out}`')


def _command_config(args, extra):
    """The config of `train` and `sweep`: --config's file, or the workdir's saved config to
    resume, with the --config.KEY=VALUE overrides applied."""
    from ganjax import config as config_lib

    overrides = config_lib.parse_override_args(extra)
    _check_workdir(args.workdir, write=True, exist=False)
    config = config_lib.load_config_file(args.config) if args.config else None
    # Imported after the config file is read: importing jax takes seconds, a bad file's error not.
    from ganjax import run_dir

    if config is None:
        config = run_dir.load_workdir_config(args.workdir)
    config_lib.apply_overrides(config, overrides)
    return config


def _train(args, extra) -> None:
    config = _command_config(args, extra)
    from ganjax import train as train_lib

    train_lib.train_and_evaluate(config, args.workdir)


_NO_CLASSES = ('the run in {workdir} is unconditional (model.conditional=False): its generator '
               'draws no class')


def _out_kind(out: str) -> str:
    """What `ganjax sample --out` writes: 'picture', 'npy', 'npz', 'folder', or a data format
    registered in `ganjax.writers.SAMPLE_WRITERS` (its extension, e.g. '.h5ad').

    Raises:
      ConfigError: for an unknown extension, a file where a folder is asked for, or a folder
        that is not empty.
    """
    from ganjax import images, writers

    ext = os.path.splitext(out.rstrip('/' + os.sep))[1].lower()
    if out.endswith(('/', os.sep)) or os.path.isdir(out) or not ext:
        if os.path.isfile(out.rstrip('/' + os.sep)):
            raise ConfigError(f'--out {out} is a file; a name without extension is a folder of '
                              'samples (give a picture, .npy or .npz name for a file)')
        if os.path.isdir(out) and os.listdir(out):
            raise ConfigError(f'--out {out} is a folder that is not empty; give a new folder '
                              '(its files would mix with the samples)')
        return 'folder'
    if ext in ('.npy', '.npz'):
        return ext[1:]
    if ext in writers.SAMPLE_WRITERS:
        return ext
    if images.image_format(out) is None:
        raise ConfigError(f'--out {out}: unknown extension {ext!r}; use one of '
                          f'{", ".join(images.IMAGE_EXTENSIONS)} for a picture, .npy or .npz for '
                          'the samples as arrays, '
                          f'{", ".join(sorted(writers.SAMPLE_WRITERS))} for the data\'s own file '
                          'formats, or a name without extension for a folder of image files')
    return 'picture'


def _names_listing(names: tuple[str, ...]) -> str:
    shown = ', '.join(names[:12]) + (f', ... ({len(names)} in all)' if len(names) > 12 else '')
    return f'{len(names)} classes, 0-{len(names) - 1}: {shown}'


def _resolve_class(value: str, names: tuple[str, ...]) -> int:
    """The index of the class that --class names: a class name first, else an index.

    Raises:
      ConfigError: for an index out of range or an unknown name.
    """
    if value in names:
        return names.index(value)
    try:
        k = int(value)
    except ValueError:
        raise ConfigError(f'--class {value!r} names no class of the run; it has '
                          f'{_names_listing(names)}') from None
    if not 0 <= k < len(names):
        raise ConfigError(f'--class {value} is out of range; the run has {_names_listing(names)}')
    return k


def _sample(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    if args.class_ is not None and args.per_class is not None:
        raise ConfigError('--class and --per-class exclude each other: --class K --num N draws N '
                          'samples of class K, --per-class N draws N of every class')
    if args.per_class is not None and args.num is not None:
        raise ConfigError('--num and --per-class exclude each other: --per-class N draws N '
                          'samples of every class')
    for flag, value in (('--num', args.num), ('--per-class', args.per_class)):
        if value is not None and value <= 0:
            raise ConfigError(f'{flag} must be positive, got {value}')
    _member_workdir(args)
    kind = _out_kind(args.out)
    target = args.out if kind == 'folder' else os.path.dirname(os.path.abspath(args.out))
    _check_can_write(os.path.abspath(target), f'--out {args.out}')
    _check_workdir(args.workdir, write=False, exist=True)
    _check_checkpoint(args.workdir, args.step, args.best)
    import numpy as np

    from ganjax import run_dir

    num_classes, names = run_dir.load_run_classes(args.workdir)
    if num_classes == 0 and (args.class_ is not None or args.per_class is not None):
        flag = f'--class {args.class_}' if args.class_ is not None else '--per-class'
        raise ConfigError(f'{flag}: ' + _NO_CLASSES.format(workdir=args.workdir))
    with open(os.path.join(args.workdir, 'run_info.json'), encoding='utf-8') as f:
        data_shape = tuple(json.load(f)['data_shape'])
    if kind == 'folder' and len(data_shape) != 3:
        raise ConfigError(f'--out {args.out}: a folder holds image files, and the run\'s data has '
                          f'shape {data_shape}; use .npz for these samples')
    num = args.num or 64
    if args.class_ is not None:
        k = _resolve_class(args.class_, names)
        labels = np.full((num,), k, np.int32)
        what = f' of class {k}' + (f' ({names[k]})' if names[k] != str(k) else '')
    elif args.per_class is not None:
        # Class-major: a grid of per_class columns has a row per class.
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), args.per_class)
        num = len(labels)
        what = f' ({args.per_class} of each of {num_classes} classes)'
    else:
        # A conditional generator's samples cycle through the classes.
        labels = np.arange(num, dtype=np.int32) % num_classes if num_classes else None
        what = f' (cycling through {num_classes} classes)' if num_classes else ''
    config, gan, state = run_dir.load_run(args.workdir, args.step, best=args.best,
                                          log=lambda m: print(f'[ganjax] {m}', flush=True))
    x = _generate(gan, state, num, args.seed, labels)
    scaling = run_dir.load_scaling(args.workdir)
    if kind.startswith('.'):
        from ganjax import writers

        if args.decode is not None:
            config.data.seq_decode = args.decode
        detail = writers.writer_for(kind)(args.out, scaling.to_data(x), labels, names, config,
                                          args.seed)
        print(f'[ganjax] {detail}')
    else:
        _write_samples(kind, args.out, x, labels, names, scaling, ncols=args.per_class)
    print(f'[ganjax] wrote {num} samples{what} from step {int(state.step)} to {args.out}')
    if kind == 'folder' and labels is not None and (
            list(names) != sorted(names) or len(set(labels.tolist())) < num_classes):
        print('[ganjax] note: the image_folder source numbers classes by their sorted subfolder '
              f'names, so reading {args.out} back gives labels that differ from the run\'s class '
              'indices (its names do not sort in class order, or only some classes are there)')


def _generate(gan, state, num: int, seed: int, labels, chunk: int = 256):
    """`num` samples of the run's EMA generator from the noise of `seed`, in model units.

    The noise is drawn for all samples at once, so the samples do not depend on `chunk` (how
    many are generated per call, which bounds memory).
    """
    import jax
    import numpy as np

    from ganjax.train_step import make_generate_fn, sample_latent

    z = sample_latent(jax.random.PRNGKey(seed), num, gan.latent_dim)
    generate = jax.jit(make_generate_fn(gan))
    parts = []
    for i in range(0, num, chunk):
        y = None if labels is None else labels[i:i + chunk]
        parts.append(np.asarray(generate(state.ema_params, state.g_state, z[i:i + chunk], y)))
    return np.concatenate(parts)


def _write_samples(kind: str, out: str, x, labels, names: tuple[str, ...], scaling,
                   ncols: int | None = None) -> None:
    """Writes generated samples (model units) as `_out_kind` says.

    Args:
      kind: 'picture', 'npy', 'npz' or 'folder'.
      out: the --out path.
      x: samples [N, ...] in the model's range.
      labels: int32 [N] classes of the samples, or None (unconditional).
      names: the run's class names.
      scaling: the run's data scaling (`to_data` maps samples to the data's units and dtype).
      ncols: columns of a picture's grid (None: square).
    """
    import numpy as np

    from ganjax import images

    if kind == 'picture':
        if (images.image_format(out) == 'TIFF' and x.ndim == 4 and scaling.quantize
                and images.needs_tiff(scaling.dtype, x.shape[-1])):
            # 16-bit or many-channel images: every sample exactly, one page each, in the data's
            # units.
            images.save_tiff(scaling.to_data(x), out)
            return
        images.save_image(images.samples_figure(x, ncols=ncols), out)
        return
    if kind == 'folder':
        images.save_samples_folder(scaling.to_data(x), labels, names, out)
        return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        if kind == 'npy':
            np.save(f, scaling.to_data(x))
        else:
            np.savez(f, x=scaling.to_data(x),
                     label=np.full(len(x), -1, np.int32) if labels is None else labels,
                     class_names=np.array(names, dtype=str))
    os.replace(tmp, out)


def _classify(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    if args.batch_size <= 0:
        raise ConfigError(f'--batch_size must be positive, got {args.batch_size}')
    if not args.out.lower().endswith('.csv'):
        raise ConfigError(f'--out {args.out}: give a .csv file name')
    _check_can_write(os.path.dirname(os.path.abspath(args.out)), f'--out {args.out}')
    _check_workdir(args.workdir, write=False, exist=True)
    _check_checkpoint(args.workdir, args.step, args.best)
    from ganjax import classify

    result = classify.classify(args.workdir, args.input, args.out, step=args.step,
                               best=args.best, batch_size=args.batch_size,
                               log=lambda m: print(f'[ganjax] {m}', flush=True))
    counts = ', '.join(f'{name}: {c}' for name, c in result['counts'].items())
    print(f"[ganjax] classified {result['num']} examples with the discriminator of step "
          f"{result['step']}; counts per predicted class: {counts}")
    if result['accuracy'] is not None:
        print(f"[ganjax] accuracy against the input's labels: {result['accuracy']:.4f}")
    print(f"[ganjax] wrote {result['out']} and {result['counts_out']}")


def _report(args, extra) -> None:
    if extra:
        raise ConfigError(f'unrecognized arguments {extra}')
    if args.out is not None:
        _check_can_write(os.path.dirname(os.path.abspath(args.out)), f'--out {args.out}')
    from ganjax import report

    path = report.write_report(args.workdir, metric=args.metric, out=args.out)
    print(f'[ganjax] wrote {path}')


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ganjax` console command.

    Bad input ends in one line on stderr, never a traceback; so do SIGTERM and Ctrl-C outside the
    training loop (inside it they checkpoint and stop).

    Args:
      argv: arguments without the program name (sys.argv[1:] if None).

    Returns:
      The exit status: 0 on success, 2 for a config error, 1 for a data, file or training error,
      130 for a second Ctrl-C inside the training loop. SIGTERM (143) and Ctrl-C (130) outside
      the loop end the process at once, without returning.
    """
    # Installed before anything slow is imported, so a signal in the first seconds (imports,
    # config, data loading) ends with a message; the training loop installs its own handlers,
    # which checkpoint, and puts these back when it ends.
    args, extra = _parser().parse_known_args(argv)
    hint = (' (the same command resumes the run from its last checkpoint, if any)'
            if args.command in ('train', 'sweep') else '')
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, functools.partial(_exit_on_signal, hint))
    try:
        return _run(args, extra, hint)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, extra: list[str], hint: str) -> int:
    commands = {'train': _train, 'sample': _sample, 'train-features': _train_features,
                'eval': _eval, 'classify': _classify, 'sweep': _sweep, 'export': _export,
                'report': _report}
    try:
        commands[args.command](args, extra)
    except ConfigError as e:
        print(f'ganjax: config error: {e}', file=sys.stderr)
        return 2
    except GanjaxError as e:
        print(f'ganjax: error: {e}', file=sys.stderr)
        return 1
    except OSError as e:
        # A file that cannot be read or written (missing, no permission, a full or read-only
        # disk) is the user's to fix, and one line naming it says what to fix; an OSError that
        # names no file is unexpected and keeps its traceback.
        if e.filename is None and e.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            raise
        where = f': {e.filename}' if e.filename is not None else ''
        print(f'ganjax: error: {e.strerror or e}{where}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the training loop's answer to a second Ctrl-C
        print(f'ganjax: interrupted by Ctrl-C{hint}', file=sys.stderr)
        return 128 + int(signal.SIGINT)
    return 0


if __name__ == '__main__':
    sys.exit(main())
