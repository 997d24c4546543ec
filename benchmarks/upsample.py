"""Speed of the generator's x2 upsampling modes: forward + backward, per mode.

Times ``jit(value_and_grad(loss))`` of
  (a) one upsampling layer, [B, size/2, size/2, 2F] -> [B, size, size, F] (gradient with respect to
      the parameters and the input, as inside a network), and
  (b) a whole DCGAN generator (train mode, BatchNorm) at each of --generator_sizes, width F,
for every mode of ganjax.models.layers.UPSAMPLE. Compile time is reported apart; warm-up calls are
excluded; every timed call is blocked on; the modes of a group are timed round-robin so that a
change in the machine's load hits them alike. JAX's ConvTranspose gradient is known to be slow
under XLA (jax-ml/jax#23783), which is why 'conv_d2s' is ganjax's default.

    python benchmarks/upsample.py --batch 64 --features 64 --repeats 5

Writes benchmarks/results/upsample_<device kind>.json (or --out) and prints a table.
"""

import argparse
import os
import sys
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax.models import layers  # noqa: E402
from ganjax.models.dcgan import DCGANGenerator  # noqa: E402


def _flops(compiled) -> float | None:
    """XLA's estimate of the floating-point operations of a compiled call, if it gives one."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # pylint: disable=broad-except  (not every backend implements it)
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or 'flops' not in cost:
        return None
    return float(cost['flops'])


def prepare(fn, args, warmup: int) -> tuple[dict, Callable[[], Any]]:
    """Compiles ``fn`` for ``args`` (timed) and runs ``warmup`` untimed calls.

    Args:
      fn: a function of ``args`` (jitted here).
      args: its arguments.
      warmup: untimed calls after compilation.

    Returns:
      ({compile_s, flops (XLA estimate or None), warmup}, a function running one blocked call).
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0

    def call():
        jax.block_until_ready(compiled(*args))

    for _ in range(warmup):
        call()
    return {'compile_s': compile_s, 'flops': _flops(compiled), 'warmup': warmup}, call


def _param_count(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


def layer_case(mode: str, size: int, batch: int, features: int, dtype, warmup: int):
    """One upsampling layer's forward + backward (see the module docstring), compiled.

    Returns:
      (description dict, function running one call).
    """
    layer = layers.make_upsample(mode, features, dtype=dtype)
    x = jax.random.normal(jax.random.key(1), (batch, size // 2, size // 2, 2 * features))
    params = jax.jit(layer.init)(jax.random.key(0), x)['params']

    def loss(params, x):
        y = layer.apply({'params': params}, x)
        return jnp.mean(jnp.square(y.astype(jnp.float32)))

    info, call = prepare(jax.value_and_grad(loss, argnums=(0, 1)), (params, x), warmup)
    return {'benchmark': 'layer', 'mode': mode, 'input_shape': list(x.shape),
            'output_shape': [batch, size, size, features], 'params': _param_count(params),
            **info}, call


def generator_case(mode: str, size: int, batch: int, features: int, latent_dim: int, dtype,
                   warmup: int):
    """A DCGAN generator's forward + backward in train mode (BatchNorm statistics), compiled.

    Returns:
      (description dict, function running one call).
    """
    shape = (size, size, 3)
    g = DCGANGenerator(shape, latent_dim=latent_dim, features=features, upsample=mode,
                       dtype=dtype)
    z = jax.random.normal(jax.random.key(1), (batch, latent_dim))
    variables = jax.jit(lambda k, z: g.init(k, z, train=False))(jax.random.key(0), z)

    def loss(params, batch_stats, z):
        x, _ = g.apply({'params': params, 'batch_stats': batch_stats}, z, train=True,
                       mutable=['batch_stats'])
        return jnp.mean(jnp.square(x))

    args = (variables['params'], variables['batch_stats'], z)
    info, call = prepare(jax.value_and_grad(loss), args, warmup)
    return {'benchmark': 'dcgan_generator', 'mode': mode, 'output_shape': [batch, *shape],
            'latent_dim': latent_dim, 'params': _param_count(variables['params']), **info}, call


def run_group(cases: list[tuple[dict, Callable[[], Any]]], repeats: int) -> list[dict]:
    """Times the cases round-robin (one call of each per round), so that drifting machine load
    affects every mode alike; adds step_s_{median,mean,min} and the speed-up over 'transpose'."""
    times = [[] for _ in cases]
    for _ in range(repeats):
        for i, (_, call) in enumerate(cases):
            t = time.perf_counter()
            call()
            times[i].append(time.perf_counter() - t)
    records = []
    for (info, _), t in zip(cases, times):
        t = np.asarray(t)
        batch = info['output_shape'][0]
        records.append({**info, 'repeats': repeats, 'step_s_median': float(np.median(t)),
                        'step_s_mean': float(t.mean()), 'step_s_min': float(t.min()),
                        'examples_per_sec': batch / float(np.median(t))})
    base = next((r for r in records if r['mode'] == 'transpose'), None)
    for r in records:
        r['speedup_vs_transpose'] = (None if base is None
                                     else base['step_s_median'] / r['step_s_median'])
    return records


def _table(records: list[dict]) -> str:
    lines = [f"{'benchmark':<16} {'output':<18} {'mode':<12} {'compile s':>9} {'step ms':>10} "
             f"{'min ms':>9} {'ex/s':>9} {'GFLOP':>8} {'vs transpose':>12}"]
    for r in records:
        flops = '' if r['flops'] is None else f"{r['flops'] / 1e9:.1f}"
        speedup = '' if r.get('speedup_vs_transpose') is None else (
            f"{r['speedup_vs_transpose']:.2f}x")
        lines.append(f"{r['benchmark']:<16} {'x'.join(map(str, r['output_shape'])):<18} "
                     f"{r['mode']:<12} {r['compile_s']:>9.2f} {r['step_s_median'] * 1e3:>10.1f} "
                     f"{r['step_s_min'] * 1e3:>9.1f} {r['examples_per_sec']:>9.1f} {flops:>8} "
                     f"{speedup:>12}")
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Runs the benchmarks, prints the table and writes the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=64, help='output side of the layer benchmark')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--features', type=int, default=64,
                        help='layer output channels; the generators\' g_features')
    parser.add_argument('--latent_dim', type=int, default=100)
    parser.add_argument('--generator_sizes', default='64,28',
                        help='comma-separated image sides of the DCGAN generators ("" = none)')
    parser.add_argument('--modes', default=','.join(layers.UPSAMPLE),
                        help='comma-separated upsampling modes')
    parser.add_argument('--dtype', default='float32', help="computation dtype, e.g. 'bfloat16'")
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--out', default='')
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(',') if m]
    unknown = sorted(set(modes) - set(layers.UPSAMPLE))
    if unknown:
        parser.error(f'unknown modes {unknown}; choose from {sorted(layers.UPSAMPLE)}')
    if args.size % 2:
        parser.error(f'--size must be even, got {args.size}')
    dtype = layers.resolve_dtype(args.dtype)
    sizes = [int(s) for s in args.generator_sizes.split(',') if s]

    records = []
    groups = [('layer', args.size)] + [('dcgan_generator', s) for s in sizes]
    for bench, size in groups:
        cases = []
        for mode in modes:
            print(f'{bench} {size}x{size} {mode}: compiling', file=sys.stderr, flush=True)
            if bench == 'layer':
                cases.append(layer_case(mode, size, args.batch, args.features, dtype,
                                        args.warmup))
            else:
                cases.append(generator_case(mode, size, args.batch, args.features,
                                            args.latent_dim, dtype, args.warmup))
        print(f'{bench} {size}x{size}: timing', file=sys.stderr, flush=True)
        records.extend(run_group(cases, args.repeats))

    report = {
        'benchmark': 'upsample',
        'measure': ('jit(value_and_grad(loss)) per call, median over repeats after warm-up; '
                    'modes of a group timed round-robin'),
        **common.environment(),
        'args': vars(args),
        'results': records,
    }
    kind = report['device_kind']
    out = common.write_result(report, args.out, 'upsample')
    print(f'{kind}, batch {args.batch}, features {args.features}, dtype {args.dtype}, '
          f'jax {jax.__version__}, flax {flax.__version__}')
    print(_table(records))
    print(f'-> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
