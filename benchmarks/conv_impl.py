"""Speed of the stride-1 'SAME' conv formulations of conv_variants.py, per conv shape.

Times ``jit`` of one conv's forward and backward (output, gradient with respect to the input and
the kernel, for a fixed random output cotangent) for every impl of ``conv.CONV_IMPLS``, compiled
with XLA's default options and (on the CPU, for the impls that contain a convolution op) with
``parallel.CPU_CONV_COMPILER_OPTIONS`` ('eigen_conv': convolutions left to XLA's Eigen code instead
of YNNPACK), on the conv layers of a DCGAN generator. The shapes are read off the generator
itself (the input of every ``nn.Conv`` that ``DCGANGenerator`` calls), so they follow dcgan.py;
for DCGAN-64, g_features 64, batch 64 they are the 3x3 'conv_d2s' convs 4x4x512->1024,
8x8x256->512, 16x16x128->256 and 32x32x64->12 (the last one makes the 64x64x3 image). Compile time
is measured apart, warm-up calls are excluded, every timed call is blocked on, and the cases of
one layer are timed round-robin (A, B, C, A, B, C, ...) so that drifting machine load hits them
alike.

    python benchmarks/conv_impl.py --repeats 5
    python benchmarks/conv_impl.py --impls xla,im2col --layers 1,2 --options default

Writes benchmarks/results/conv_impl_<device kind>.json (or --out) and prints a table. XLA_FLAGS
in effect are recorded in the JSON.
"""

import argparse
import os
import sys
import time

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
import conv_variants as conv  # noqa: E402  (beside this script)
from ganjax import parallel  # noqa: E402
from ganjax.models.dcgan import DCGANGenerator  # noqa: E402


def generator_convs(size: int, channels: int, features: int, batch: int,
                    latent_dim: int = 100) -> list[dict]:
    """The stride-1 convs of a DCGAN generator for ``size``-sided images, in call order.

    Returns:
      One dict per ``nn.Conv``: name, input shape ``[batch, *spatial, in]``, kernel shape.
    """
    g = DCGANGenerator((size, size, channels), latent_dim=latent_dim, features=features)
    found = []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.Conv) and context.method_name == '__call__':
            x = args[0]
            window = tuple(module.kernel_size)
            found.append({'name': '/'.join(module.scope.path),
                          'input_shape': [batch, *x.shape[1:]],
                          'kernel_shape': [*window, x.shape[-1], module.features]})
        return next_fun(*args, **kwargs)

    def init(z):
        with nn.intercept_methods(interceptor):
            return g.init(jax.random.key(0), z, train=False)

    jax.eval_shape(init, jax.ShapeDtypeStruct((1, latent_dim), jnp.float32))
    return found


def conv_flops(input_shape, kernel_shape) -> float:
    """Multiply-adds x 2 of the forward conv (stride 1, 'SAME': output spatial = input's)."""
    return 2.0 * np.prod(input_shape[:-1]) * np.prod(kernel_shape)


#: --options name -> XLA compile options.
OPTIONS = {'default': None, 'eigen_conv': parallel.CPU_CONV_COMPILER_OPTIONS}


def layer_cases(impl: str, input_shape, kernel_shape, options: list[str], warmup: int,
                dtype=jnp.float32):
    """Compiles forward + backward of one conv with ``impl`` under each of ``options`` (skipping
    'eigen_conv' where the program has no convolution, as it would compile the same code) and runs
    ``warmup`` calls of each, with inputs, kernel and cotangent in ``dtype``.

    Returns:
      [(options name, compile seconds, function running one blocked call)].
    """
    fn = conv.CONV_IMPLS[impl]
    x = jax.random.normal(jax.random.key(1), input_shape, jnp.float32).astype(dtype)
    k = (0.02 * jax.random.normal(jax.random.key(2), kernel_shape, jnp.float32)).astype(dtype)
    ct = jax.random.normal(jax.random.key(3), (*input_shape[:-1], kernel_shape[-1]),
                           jnp.float32).astype(dtype)

    def fwd_bwd(x, k, ct):
        y, vjp = jax.vjp(lambda x, k: fn(x, k), x, k)
        dx, dk = vjp(ct)
        return y, dx, dk

    lowered = jax.jit(fwd_bwd).lower(x, k, ct)
    has_conv = 'convolution' in lowered.as_text()
    cases = []
    for name in options:
        if name != 'default' and (not has_conv or jax.default_backend() != 'cpu'):
            continue
        t0 = time.perf_counter()
        compiled = lowered.compile(compiler_options=OPTIONS[name])
        compile_s = time.perf_counter() - t0

        def call(compiled=compiled):
            jax.block_until_ready(compiled(x, k, ct))

        for _ in range(warmup):
            call()
        cases.append((name, compile_s, call))
    return cases


def main(argv=None) -> int:
    """Runs the benchmark, prints the table and writes the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=64, help='image side of the DCGAN generator')
    parser.add_argument('--channels', type=int, default=3)
    parser.add_argument('--features', type=int, default=64, help="the generator's g_features")
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--impls', default=','.join(conv.CONV_IMPLS),
                        help='comma-separated keys of conv_variants.CONV_IMPLS')
    parser.add_argument('--options', default=','.join(OPTIONS),
                        help=f'comma-separated compile option sets, of {sorted(OPTIONS)}')
    parser.add_argument('--layers', default='',
                        help='comma-separated layer indices (0 = first conv) to run; "" = all')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'),
                        help='of the inputs, kernel and cotangent (bfloat16: what precision=bf16 '
                             'computes a conv in)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--out', default='')
    args = parser.parse_args(argv)
    impls = [i for i in args.impls.split(',') if i]
    unknown = sorted(set(impls) - set(conv.CONV_IMPLS))
    if unknown:
        parser.error(f'unknown impls {unknown}; choose from {sorted(conv.CONV_IMPLS)}')
    options = [o for o in args.options.split(',') if o]
    if set(options) - set(OPTIONS):
        parser.error(f'unknown options {sorted(set(options) - set(OPTIONS))}; choose from '
                     f'{sorted(OPTIONS)}')

    convs = generator_convs(args.size, args.channels, args.features, args.batch)
    if args.layers:
        convs = [convs[int(i)] for i in args.layers.split(',')]
    records = []
    for layer in convs:
        flops = conv_flops(layer['input_shape'], layer['kernel_shape'])
        cases = []
        for impl in impls:
            print(f"{layer['name']} {impl}: compiling", file=sys.stderr, flush=True)
            for case in layer_cases(impl, layer['input_shape'], layer['kernel_shape'], options,
                                    args.warmup, jnp.dtype(args.dtype)):
                cases.append((impl, *case))
        times = [[] for _ in cases]
        for _ in range(args.repeats):
            for i, (_, _, _, call) in enumerate(cases):
                t = time.perf_counter()
                call()
                times[i].append(time.perf_counter() - t)
        for (impl, opts, compile_s, _), t in zip(cases, times):
            t = np.asarray(t)
            records.append({**layer, 'impl': impl, 'options': opts,
                            'compile_options': OPTIONS[opts], 'compile_s': compile_s,
                            'fwd_flops': flops, 'fwd_bwd_flops': 3 * flops,
                            'repeats': args.repeats, 'times_s': t.tolist(),
                            'step_s_median': float(np.median(t)), 'step_s_min': float(t.min()),
                            'gflops_per_s': 3 * flops / float(np.median(t)) / 1e9})
    best = {}
    for r in records:
        if r['name'] not in best or r['step_s_median'] < best[r['name']]['step_s_median']:
            best[r['name']] = r
    for r in records:
        ref = next((q for q in records if q['name'] == r['name'] and q['impl'] == 'xla' and
                    q['options'] == 'default'), None)
        r['speedup_vs_xla'] = None if ref is None else ref['step_s_median'] / r['step_s_median']
        r['fastest'] = best[r['name']] is r

    report = {
        'benchmark': 'conv_impl',
        'measure': ('jit(forward + vjp wrt input and kernel) of one stride-1 SAME conv, in '
                    f'{args.dtype}, median seconds over repeats after warm-up; the (impl, options) '
                    'cases of a layer timed round-robin; speedup_vs_xla is against impl xla with '
                    'the default options'),
        **common.environment(),
        'xla_flags': os.environ.get('XLA_FLAGS', ''),
        'args': vars(args),
        'results': records,
    }
    out = common.write_result(report, args.out, 'conv_impl')
    print(f"{report['machine']}, {args.dtype}, batch {args.batch}, DCGAN-{args.size} g_features "
          f"{args.features}, jax {jax.__version__}, flax {flax.__version__}, "
          f"XLA_FLAGS={report['xla_flags']!r}")
    print(f"{'layer':<10} {'input':<16} {'kernel':<14} {'impl':<13} {'options':<11} "
          f"{'compile s':>9} {'median ms':>10} {'min ms':>9} {'GFLOP/s':>8} {'vs xla':>7}")
    for r in records:
        speedup = '' if r['speedup_vs_xla'] is None else f"{r['speedup_vs_xla']:.2f}x"
        print(f"{r['name']:<10} {'x'.join(map(str, r['input_shape'])):<16} "
              f"{'x'.join(map(str, r['kernel_shape'])):<14} {r['impl']:<13} {r['options']:<11} "
              f"{r['compile_s']:>9.2f} {r['step_s_median'] * 1e3:>10.1f} "
              f"{r['step_s_min'] * 1e3:>9.1f} {r['gflops_per_s']:>8.1f} {speedup:>7}"
              f"{' *' if r['fastest'] else ''}")
    print(f'-> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
