"""Semi-supervised digit classification with 100 labels: the K+1 GAN against D trained alone.

For each label seed, trains configs/ssgan_mnist.py (the embedded digits, 100 labels kept, K+1
discriminator, feature matching) and, on the very same 100 labelled digits, the same
discriminator architecture as a plain K-class classifier (cross-entropy only, same optimizer,
batch size and number of updates). Both are scored on the 500 held-out digits, which neither saw;
the GAN's accuracy is that of its final D (no checkpoint picked on held-out data). Writes
benchmarks/results/semi_supervised_<device>.json. A seed took 26 minutes when three ran side by
side on 2 CPU cores shared with other jobs.

    python benchmarks/semi_supervised.py                    # 3 label seeds of 1,200 steps
    python benchmarks/semi_supervised.py --seeds 0 --steps 500   # a quick look
    python benchmarks/semi_supervised.py --combine s0.json s1.json s2.json   # seeds run apart
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import data as data_lib  # noqa: E402
from ganjax import losses, run_dir  # noqa: E402
from ganjax import train as train_lib  # noqa: E402
from ganjax.classify import predict  # noqa: E402
from ganjax.train_step import (apply_module, build_gan, create_state,  # noqa: E402
                               make_classify_fn, to_model)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs', 'ssgan_mnist.py')


def _held_out(config):
    source = data_lib.build_source(config.data, 'eval')
    batch = source.get_batch(np.arange(len(source)))
    return batch['x'], batch['label']


def gan_accuracy(config, workdir: str) -> tuple[float, float]:
    """Trains the K+1 GAN; returns (held-out accuracy of its final D, training seconds)."""
    t0 = time.perf_counter()
    train_lib.train_and_evaluate(config, workdir)
    seconds = time.perf_counter() - t0
    _, gan, state = run_dir.load_run(workdir)
    x, y = _held_out(config)
    probs = predict(jax.jit(make_classify_fn(gan)), state.d_params, state.d_state, x)
    return float(np.mean(np.argmax(probs, -1) == y)), seconds


def supervised_accuracy(config, steps: int) -> tuple[float, float]:
    """The same D as a plain classifier of the labelled digits; (held-out accuracy, seconds)."""
    train = data_lib.build_source(config.data, 'train')
    labelled = train.labelled
    batch = train.get_batch(labelled)
    x_lab, y_lab = batch['x'], batch['label']
    assert np.all(y_lab >= 0) and len(x_lab) == config.data.num_labels
    gan = build_gan(config, train.data_shape, train.num_classes, scaling=train.scaling)
    state = create_state(config, gan)
    params, cols = state.d_params, state.d_state
    tx = optax.adam(config.optim.d_lr, b1=config.optim.b1, b2=config.optim.b2)
    opt_state = tx.init(params)
    size = config.data.labelled_batch_size

    @jax.jit
    def update(params, cols, opt_state, idx):
        def loss_fn(p):
            out, new_cols = apply_module(gan.discriminator, p, cols,
                                         to_model(gan, jnp.asarray(x_lab)[idx]), train=True)
            return losses.class_cross_entropy(out['class_logits'],
                                              jnp.asarray(y_lab)[idx]), new_cols

        (loss, new_cols), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_cols, opt_state, loss

    rng = np.random.default_rng(config.data.label_seed)
    t0 = time.perf_counter()
    for _ in range(steps * config.train.n_critic):
        idx = rng.choice(len(x_lab), size=size, replace=size > len(x_lab))
        params, cols, opt_state, _ = update(params, cols, opt_state, idx)
    seconds = time.perf_counter() - t0
    x, y = _held_out(config)
    probs = predict(jax.jit(make_classify_fn(gan)), params, cols, x)
    return float(np.mean(np.argmax(probs, -1) == y)), seconds


def main(argv=None) -> int:
    """Runs every seed and writes the result file."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='label seeds')
    p.add_argument('--steps', type=int, default=0, help='G steps (0 = the config\'s)')
    p.add_argument('--out', default='')
    p.add_argument('--combine', nargs='+', default=[],
                   help='merge the runs of earlier result files (e.g. one per seed, run in '
                        'parallel) into one result instead of training')
    args = p.parse_args(argv)
    runs, parts = [], []
    for path in args.combine:
        with open(path, encoding='utf-8') as f:
            part = json.load(f)
        if args.steps and part['num_steps'] != args.steps:
            raise SystemExit(f'{path} ran {part["num_steps"]} steps, not --steps {args.steps}')
        args.steps = part['num_steps']
        runs.extend(part['runs'])
        parts.append(part['command'])
    for seed in args.seeds if not args.combine else ():
        config = config_lib.load_config_file(CONFIG)
        config.data.label_seed = seed
        config.seed = seed
        config.train.progress = False
        if args.steps:
            config.train.num_steps = args.steps
        with tempfile.TemporaryDirectory(prefix='ganjax_ssgan_') as tmp:
            gan_acc, gan_s = gan_accuracy(config, os.path.join(tmp, 'run'))
        sup_acc, sup_s = supervised_accuracy(config, config.train.num_steps)
        runs.append({'label_seed': seed, 'ssgan_accuracy': gan_acc, 'supervised_accuracy': sup_acc,
                     'ssgan_train_seconds': gan_s, 'supervised_train_seconds': sup_s})
        print(f'label seed {seed}: K+1 GAN {gan_acc:.4f} ({gan_s:.0f} s), D alone on the labels '
              f'{sup_acc:.4f} ({sup_s:.0f} s)', flush=True)

    def stats(key):
        v = np.array([r[key] for r in runs])
        return {'mean': float(v.mean()), 'std': float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                'error_mean': float(1 - v.mean())}

    config = config_lib.load_config_file(CONFIG)
    record = {
        'benchmark': 'semi_supervised', 'config': 'configs/ssgan_mnist.py',
        'command': 'python benchmarks/semi_supervised.py ' + ' '.join(argv or sys.argv[1:]),
        **({'combined_from': parts} if parts else {}),
        'num_labels': config.data.num_labels,
        'num_steps': args.steps or config.train.num_steps,
        'held_out_examples': int(len(_held_out(config)[1])),
        'runs': runs, 'ssgan': stats('ssgan_accuracy'),
        'supervised': stats('supervised_accuracy'), **common.environment()}
    path = common.write_result(record, args.out, 'semi_supervised')
    print(f"K+1 GAN {record['ssgan']['mean']:.4f} +- {record['ssgan']['std']:.4f}; "
          f"supervised only {record['supervised']['mean']:.4f} +- "
          f"{record['supervised']['std']:.4f} -> {path}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
