"""The throughput matrix: models x batch sizes x precisions x strategies, one process each.

Each cell runs `throughput.py` in a fresh process (so a device's peak-memory counter starts from
zero and one failure does not end the matrix) and writes its JSON file to benchmarks/results/. A
cell that fails or runs past --timeout is recorded as such, with the reason, in the same place.

    python benchmarks/run_matrix.py --preset gpu       # everything the issue asks, on a GPU/TPU
    python benchmarks/run_matrix.py --preset cpu       # the subset a 2-core CPU finishes
    python benchmarks/report.py                        # markdown table + plot of the results

On the CPU the 'jit' and 'pmap' cells run on 8 simulated devices
(--xla_force_host_platform_device_count=8): they measure the overhead of the parallel paths,
not a speed-up (the 8 devices share the same cores).
"""

import argparse
import itertools
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import common  # noqa: E402

#: Model label -> (config file, data shape).
MODELS = {
    'DCGAN-28': ('configs/dcgan_mnist.py', '28,28,1'),
    'DCGAN-64': ('configs/dcgan_celeba64.py', '64,64,3'),
    'ResNet-32': ('configs/resnet_cifar10.py', '32,32,3'),
}

#: preset -> list of (models, batches, precisions, strategies, timed calls).
PRESETS = {
    'gpu': [(tuple(MODELS), (64, 128, 256, 512, 1024, 2048), ('float32', 'bf16'),
             ('single', 'jit', 'pmap'), 20)],
    'cpu': [
        (('DCGAN-28',), (64, 256), ('float32', 'bf16'), ('single',), 10),
        (('DCGAN-28',), (64,), ('float32',), ('jit', 'pmap'), 10),
        (('DCGAN-64',), (64,), ('float32', 'bf16'), ('single',), 4),
        (('ResNet-32',), (64,), ('float32',), ('single',), 2),
    ],
}


def cells(preset: str):
    """Yields (model, batch, precision, strategy, steps) for a preset."""
    for models, batches, precisions, strategies, steps in PRESETS[preset]:
        for model, batch, precision, strategy in itertools.product(models, batches, precisions,
                                                                   strategies):
            yield model, batch, precision, strategy, steps


def run_cell(model, batch, precision, strategy, steps, timeout, simulated_devices):
    """Runs one cell in a subprocess; returns (ok, message)."""
    config, shape = MODELS[model]
    cmd = [sys.executable, os.path.join(HERE, 'throughput.py'), '--config', config,
           '--name', model, '--data_shape', shape, '--batch', str(batch), '--precision',
           precision, '--strategy', strategy, '--steps', str(steps),
           '--warmup', '1' if steps < 5 else '3']
    env = dict(os.environ)
    if simulated_devices and strategy != 'single':
        env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                            f' --xla_force_host_platform_device_count={simulated_devices}').strip()
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return False, f"failed (exit {proc.returncode}): {' '.join(tail)}"
    return True, proc.stdout.strip().splitlines()[-1] + f" [{time.time() - t0:.0f} s]"


def main(argv=None) -> int:
    """Runs a preset's cells and records failures beside the results."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', choices=sorted(PRESETS), required=True)
    p.add_argument('--timeout', type=int, default=900, help='seconds per cell')
    p.add_argument('--only', default='', help='comma-separated model labels to run')
    args = p.parse_args(argv)
    import jax  # noqa: PLC0415 (only to name the device)
    platform = jax.devices()[0].platform
    simulated = 8 if platform == 'cpu' else 0
    only = set(filter(None, args.only.split(',')))
    failures = []
    for model, batch, precision, strategy, steps in cells(args.preset):
        if only and model not in only:
            continue
        ok, message = run_cell(model, batch, precision, strategy, steps, args.timeout,
                                     simulated)
        print(f'{model} b{batch} {precision} {strategy}: {message}', flush=True)
        if not ok:
            failures.append({'model': model, 'batch_size': batch, 'precision': precision,
                             'strategy': strategy, 'error': message})
    if failures:
        record = {'benchmark': 'throughput_failures', 'preset': args.preset,
                  'failures': failures, **common.environment()}
        out = common.write_result(record, '', f'throughput_failures_{args.preset}')
        print(f'{len(failures)} cell(s) did not complete; recorded in {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
