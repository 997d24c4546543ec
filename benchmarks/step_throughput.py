"""Throughput of the compiled training step for a config: steps/s and images/s.

Compile time is measured apart; warm-up steps are excluded; every timed step is blocked on. The
input is a batch of random data of the config's data shape already on the device, so the figure is
the step's own speed, not the input pipeline's.

    python benchmarks/step_throughput.py --config configs/dcgan_mnist.py
    python benchmarks/step_throughput.py --config configs/dcgan_mnist.py --config.data.batch_size=128

Writes benchmarks/results/step_throughput_<config>_<device>.json (or --out).
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import data  # noqa: E402
from ganjax.train_step import build_gan, create_state, make_train_step  # noqa: E402


def measure(config, data_shape, steps: int, warmup: int) -> dict:
    """Compiles the step, runs warm-up steps, then times `steps` steps.

    Args:
      config: the run config.
      data_shape: shape of one example.
      steps: timed steps.
      warmup: untimed steps after compilation.

    Returns:
      A dict of the measurements.
    """
    gan = build_gan(config, data_shape)
    state = create_state(config, gan)
    n_critic, batch_size = config.train.n_critic, config.data.batch_size
    rng = np.random.default_rng(0)
    shape = (n_critic, batch_size) + tuple(data_shape)
    if len(data_shape) == 3:
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    else:
        x = rng.normal(size=shape).astype(np.float32)
    batch = jax.device_put({'x': x, 'label': np.zeros(shape[:2], np.int32)})
    step_fn = jax.jit(make_train_step(config, gan), donate_argnums=0)

    t0 = time.perf_counter()
    compiled = step_fn.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        state, metrics = compiled(state, batch)
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t)
    times = np.array(times)
    median = float(np.median(times))
    return {
        'compile_s': compile_s,
        'step_s_median': median,
        'step_s_mean': float(times.mean()),
        'step_s_min': float(times.min()),
        'steps_per_sec': 1.0 / median,
        # Each step consumes n_critic real batches and generates (n_critic + 1) fake ones.
        'images_per_sec': batch_size * n_critic / median,
        'timed_steps': steps,
        'warmup_steps': warmup,
        'final_d_loss': float(metrics['d_loss']),
    }


def main(argv=None) -> int:
    """Runs the benchmark and writes its JSON file."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True)
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--data_shape', default='',
                        help='comma-separated shape of one example; default: the dataset\'s')
    parser.add_argument('--out', default='')
    args, extra = parser.parse_known_args(argv)
    overrides = config_lib.parse_override_args(extra)
    config = config_lib.load_config_file(args.config)
    config_lib.apply_overrides(config, overrides)
    config_lib.validate(config)
    if args.data_shape:
        data_shape = tuple(int(s) for s in args.data_shape.split(','))
    else:
        data_shape = tuple(data.build_source(config.data, 'train').data_shape)

    result = measure(config, data_shape, args.steps, args.warmup)
    name = os.path.splitext(os.path.basename(args.config))[0]
    record = {
        'benchmark': 'step_throughput',
        'config': args.config,
        'overrides': overrides,
        'arch': config.model.arch,
        'upsample': config.model.upsample,
        'data_shape': list(data_shape),
        'batch_size': config.data.batch_size,
        'n_critic': config.train.n_critic,
        'dtype': config.model.dtype,
        **common.environment(),
        **result,
    }
    kind = record['device_kind']
    out = common.write_result(record, args.out, f'step_throughput_{name}')
    print(f"{name} on {kind}: batch {record['batch_size']}, compile {result['compile_s']:.1f} s, "
          f"{result['steps_per_sec']:.2f} steps/s, {result['images_per_sec']:.1f} images/s "
          f"(median of {args.steps} steps) -> {out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
