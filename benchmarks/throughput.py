"""Training throughput of a config: images/s, steps/s, peak memory and model FLOP utilization.

For a config, global batch size, precision and parallel strategy, this compiles the training step
exactly as `ganjax train` runs it (through `ganjax.parallel`), times it on a batch of random data
already on the devices, and reports:

* compile time, apart; warm-up calls excluded; every timed call blocked on;
* steps/s and images/s (real images consumed: batch x n_critic per step);
* peak device memory: the allocator's peak where the device reports one (GPU, TPU), else XLA's
  estimate for the compiled program (arguments + outputs + temporaries - donated aliases);
* MFU: XLA's FLOP count of the one-step program (`cost_analysis` of the lowered program; with
  the n_critic loop unrolled, because the analysis counts a loop body once) times steps/s, over
  the peak FLOP/s of the devices used: `PEAK_FLOPS` for known accelerators, a measured large
  matmul otherwise (CPU; simulated CPU devices share the host's cores, so their peak is the
  host's, not 8 times it).

    python benchmarks/throughput.py --config configs/dcgan_mnist.py --batch 64
    python benchmarks/throughput.py --config configs/dcgan_celeba64.py --data_shape 64,64,3 \\
        --batch 1024 --precision bf16 --strategy jit

Strategies: single (one device), jit (sharded over all devices), pmap. Writes
benchmarks/results/throughput_<name>_<strategy>_<precision>_b<batch>_<device>.json (or --out).
`--batches 256,1024,4096` times each batch and reports the fastest, with its MFU, and every batch
under "sweep" (file ..._bbest_<device>.json).
"""

import argparse
import copy
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import compose, data, parallel  # noqa: E402
from ganjax.train_step import build_gan, create_state, make_train_step  # noqa: E402

#: Dense peak FLOP/s per device by device kind (substring match) and precision. The H100/H200
#: bf16 figure is the measured large-matmul rate (the data sheet's 989 TFLOP/s is not reached by
#: real matmuls); float32 matmuls run as TF32 on the tensor cores by XLA's default precision.
PEAK_FLOPS = {
    'H100': {'bf16': 790e12, 'float32': 395e12},
    'H200': {'bf16': 790e12, 'float32': 395e12},
    'A100': {'bf16': 280e12, 'float32': 140e12},
    'TPU v4': {'bf16': 275e12, 'float32': 275e12},
    'TPU v5 lite': {'bf16': 197e12, 'float32': 197e12},
    'TPU v5p': {'bf16': 459e12, 'float32': 459e12},
}
STRATEGIES = ('single', 'jit', 'pmap')


def measured_matmul_peak(precision: str, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of one device on a large square matmul in `precision` (the CPU's 'peak')."""
    dtype = jnp.bfloat16 if precision == 'bf16' else jnp.float32
    device = jax.devices()[0]
    a = jax.device_put(jnp.ones((n, n), dtype), device)
    b = jax.device_put(jnp.ones((n, n), dtype), device)
    mm = jax.jit(lambda x, y: x @ y)
    mm(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a, b).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / float(np.median(times))


def peak_flops(precision: str) -> tuple[float, str]:
    """(peak FLOP/s per device, where the figure comes from)."""
    kind = jax.devices()[0].device_kind
    for key, peaks in PEAK_FLOPS.items():
        if key in kind:
            return peaks[precision], f'table: {key} {precision}'
    return measured_matmul_peak(precision), 'measured: 2048x2048 matmul on one device'


def _cost(compiled) -> dict:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return cost or {}


def step_flops(config, gan, state, batch_x) -> float:
    """XLA's FLOP count of one step on the global batch, one device, n_critic loop unrolled.

    The count is XLA's cost analysis of the lowered program, before its optimizations: no
    compile (which takes as long as the step's own on a GPU), and the model's FLOPs rather than
    the converts that a bf16 program adds. It was within 1.5% of the compiled program's count
    in float32 (DCGAN-28, DCGAN-64, ResNet-32); the compiled count is used where a backend
    gives none for the lowered program.
    """
    step = make_train_step(config, gan, unroll_critic=True)
    one = jax.devices()[0]
    state = jax.device_put(jax.device_get(state), one)
    lowered = jax.jit(step).lower(state, {'x': jax.device_put(batch_x, one)})
    try:
        flops = _cost(lowered).get('flops')
    except Exception:  # noqa: BLE001  (not every backend analyses a lowered program)
        flops = None
    if not flops:
        flops = _cost(lowered.compile()).get('flops', float('nan'))
    return float(flops)


def memory(compiled) -> tuple[float | None, str]:
    """(peak bytes, source): the allocator's peak if the device has one, else XLA's estimate."""
    stats = jax.devices()[0].memory_stats()
    if stats and 'peak_bytes_in_use' in stats:
        return float(stats['peak_bytes_in_use']), 'allocator peak (device 0)'
    try:
        m = compiled.memory_analysis()
        total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes -
                 m.alias_size_in_bytes)
        return float(total), 'XLA estimate of the compiled program (per device)'
    except Exception:  # noqa: BLE001  (not every backend implements it)
        return None, 'unavailable'


def random_batch(config, data_shape, rng) -> np.ndarray:
    """[n_critic, B, *data_shape]: uint8 images, or normal floats for other data."""
    shape = (config.train.n_critic, config.data.batch_size) + tuple(data_shape)
    if len(data_shape) == 3:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.normal(size=shape).astype(np.float32)


def measure(config, data_shape, steps: int, warmup: int, count_flops: bool = True) -> dict:
    """Compiles and times the step as `config.parallel` lays it out.

    Args:
      config: the run config (batch size, precision and layout set).
      data_shape: shape of one example.
      steps: timed calls.
      warmup: untimed calls after compilation.
      count_flops: compile the unrolled one-device program for the FLOP count.

    Returns:
      A dict of the measurements.
    """
    # The synthetic batch below is 8-bit pixels for images, floats in the model's range otherwise.
    scaling = data.Scaling.image(8) if len(data_shape) == 3 else None
    gan = build_gan(config, data_shape, scaling=scaling)
    par = parallel.Parallel(config)
    k = int(config.train.steps_per_call)
    rng = np.random.default_rng(0)
    host = random_batch(config, data_shape, rng)
    if k > 1:
        batch = par.put_batch({'x': np.stack([host] * k)}, batch_axis=2)
    else:
        batch = par.put_batch({'x': host}, batch_axis=1)
    state = par.init_state(lambda: create_state(config, gan))
    fn = compose.compile_step(config, gan, par, steps_per_call=k)

    t0 = time.perf_counter()
    compiled = fn.lower(state, batch).compile()
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
    times = np.array(times) / k  # per training step
    median = float(np.median(times))
    peak_mem, mem_source = memory(compiled)
    b, n_critic = config.data.batch_size, config.train.n_critic
    out = {
        'layout': par.describe(),
        'num_devices': par.num_devices,
        'compile_s': compile_s,
        'step_s_median': median,
        'step_s_min': float(times.min()),
        'steps_per_sec': 1.0 / median,
        'images_per_sec': b * n_critic / median,
        'timed_calls': steps,
        'warmup_calls': warmup,
        'peak_memory_bytes': peak_mem,
        'peak_memory_source': mem_source,
        'final_d_loss': float(np.asarray(par.host_metrics(metrics)['d_loss']).reshape(-1)[-1]),
    }
    if count_flops:
        flops = step_flops(config, gan, par.canonical_state(state), host)
        out.update(mfu_fields(config, flops, median, par))
    return out


def mfu_fields(config, flops: float, step_s: float, par) -> dict:
    """FLOPs, achieved FLOP/s, the peak and MFU of a step of `flops` taking `step_s` seconds."""
    peak, peak_source = peak_flops(config.precision)
    # Simulated CPU devices (--xla_force_host_platform_device_count) share the host's cores:
    # the measured matmul rate is already the whole host's.
    devices = 1 if par.devices[0].platform == 'cpu' else par.num_devices
    return {
        'flops_per_step': flops,
        'achieved_flops_per_sec': flops / step_s,
        'peak_flops_per_device': peak,
        'peak_flops_source': peak_source,
        'mfu': flops / step_s / (peak * devices),
    }


def sweep(config, data_shape, batches: list[int], steps: int, warmup: int,
          count_flops: bool = True) -> dict:
    """Times the step at each global batch in `batches`; counts FLOPs (MFU) at the fastest only.

    Args:
      config: the run config (precision and layout set; its batch size is replaced).
      data_shape: shape of one example.
      batches: global batch sizes to time.
      steps: timed calls per batch.
      warmup: untimed calls per batch after compilation.
      count_flops: compile the unrolled one-device program of the best batch for its MFU.

    Returns:
      The best batch's measurements (as `measure` returns them) with 'batch_size' and
      'sweep': [{batch_size, images_per_sec, steps_per_sec, compile_s, ...}] for every batch;
      a batch that fails (out of memory, say) has {'batch_size', 'error'} there.
    """
    rows, best, best_config = [], None, None
    for b in batches:
        c = copy.deepcopy(config)
        c.data.batch_size = b
        config_lib.validate(c)
        try:
            r = measure(c, data_shape, steps, warmup, count_flops=False)
        except Exception as e:  # noqa: BLE001  (an out-of-memory batch must not end the sweep)
            rows.append({'batch_size': b, 'error': f'{type(e).__name__}: {e}'[:500]})
            print(f'batch {b}: {rows[-1]["error"]}', file=sys.stderr, flush=True)
            continue
        rows.append({'batch_size': b, **{k: r[k] for k in (
            'images_per_sec', 'steps_per_sec', 'step_s_median', 'compile_s',
            'peak_memory_bytes')}})
        print(f"batch {b}: {r['images_per_sec']:,.1f} images/s (compile {r['compile_s']:.1f} s)",
              file=sys.stderr, flush=True)
        if best is None or r['images_per_sec'] > best['images_per_sec']:
            best, best_config = {**r, 'batch_size': b}, c
    if best is None:
        raise RuntimeError(f'no batch of {batches} ran: ' + '; '.join(r['error'] for r in rows))
    if count_flops:
        gan = build_gan(best_config, data_shape,
                        scaling=data.Scaling.image(8) if len(data_shape) == 3 else None)
        state = create_state(best_config, gan)
        host = random_batch(best_config, data_shape, np.random.default_rng(0))
        flops = step_flops(best_config, gan, state, host)
        best.update(mfu_fields(best_config, flops, best['step_s_median'],
                               parallel.Parallel(best_config)))
    best['sweep'] = rows
    return best


def configure(args, extra) -> tuple:
    """Builds the config and data shape from the command line."""
    overrides = config_lib.parse_override_args(extra)
    config = config_lib.load_config_file(args.config)
    config_lib.apply_overrides(config, overrides)
    if args.batch:
        config.data.batch_size = args.batch
    config.precision = args.precision
    config.train.steps_per_call = args.steps_per_call
    config.parallel.strategy = 'pmap' if args.strategy == 'pmap' else 'jit'
    config.parallel.num_devices = 1 if args.strategy == 'single' else args.num_devices
    config_lib.validate(config)
    if args.data_shape:
        data_shape = tuple(int(s) for s in args.data_shape.split(','))
    else:
        data_shape = tuple(data.build_source(config.data, 'train').data_shape)
    return config, data_shape, overrides


def parser() -> argparse.ArgumentParser:
    """The command line (shared with run_matrix.py)."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--name', default='', help='model label in the results (default: config name)')
    p.add_argument('--data_shape', default='', help="comma-separated; default: the dataset's")
    p.add_argument('--batch', type=int, default=0, help='global batch (default: the config\'s)')
    p.add_argument('--batches', default='',
                   help='comma-separated global batches to sweep: times each, reports the '
                        'fastest (with its MFU) and every batch under "sweep"')
    p.add_argument('--precision', default='float32', choices=('float32', 'bf16'))
    p.add_argument('--strategy', default='single', choices=STRATEGIES)
    p.add_argument('--num_devices', type=int, default=0, help='for jit/pmap (0 = all)')
    p.add_argument('--steps_per_call', type=int, default=1)
    p.add_argument('--steps', type=int, default=20, help='timed calls')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--no_flops', action='store_true', help='skip the FLOP count (and MFU)')
    p.add_argument('--cpu_convs', choices=('ganjax', 'ynnpack'), default='ganjax',
                   help="XLA:CPU only: 'ganjax' compiles the step as ganjax does (convolutions "
                        "in XLA's Eigen code, parallel.cpu_conv_compiler_options); 'ynnpack' "
                        "leaves them to YNNPACK, jaxlib's default (to compare the two)")
    p.add_argument('--out', default='')
    return p


def main(argv=None) -> int:
    """Runs one measurement and writes its JSON file."""
    args, extra = parser().parse_known_args(argv)
    config, data_shape, overrides = configure(args, extra)
    if args.cpu_convs == 'ynnpack':
        # compose.compile_step asks this function for its compile options at every compile.
        parallel.cpu_conv_compiler_options = lambda backend=None: None
    if args.batches:
        batches = [int(b) for b in args.batches.split(',') if b]
        result = sweep(config, data_shape, batches, args.steps, args.warmup, not args.no_flops)
        config.data.batch_size = result.pop('batch_size')
    else:
        result = measure(config, data_shape, args.steps, args.warmup, not args.no_flops)
    name = args.name or os.path.splitext(os.path.basename(args.config))[0]
    record = {
        'benchmark': 'throughput',
        'model': name,
        'config': args.config,
        'overrides': overrides,
        'arch': config.model.arch,
        'upsample': config.model.upsample,
        'downsample': config.model.downsample,
        'data_shape': list(data_shape),
        'batch_size': config.data.batch_size,
        'n_critic': config.train.n_critic,
        'precision': config.precision,
        'strategy': args.strategy,
        'steps_per_call': args.steps_per_call,
        'xla_flags': os.environ.get('XLA_FLAGS', ''),
        'cpu_convs': args.cpu_convs,
        **common.environment(),
        **result,
    }
    batch_tag = 'best' if args.batches else config.data.batch_size
    default = f'throughput_{name}_{args.strategy}_{config.precision}_b{batch_tag}'
    out = common.write_result(record, args.out, default)
    mfu = f", MFU {100 * result['mfu']:.1f}%" if 'mfu' in result else ''
    best = ' (the fastest of ' + args.batches + ')' if args.batches else ''
    print(f"{name} {args.strategy} {config.precision} batch {config.data.batch_size}{best} on "
          f"{result['layout']}: compile {result['compile_s']:.1f} s, "
          f"{result['steps_per_sec']:.2f} steps/s, {result['images_per_sec']:.1f} images/s{mfu}"
          f" -> {out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
