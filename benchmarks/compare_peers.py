"""ganjax against its PyTorch peers, side by side on the same machine, in one run.

For one model, batch and precision this runs, one after the other and each in its own process (so
they never share the cores or the accelerator):

1. ganjax's compiled step (`throughput.py`, one device);
2. the PyTorch peer of the same model (benchmarks/peers/torch_gan.py: same layers, loss, Adam
   settings, batch, n_critic and EMA), eager;
3. the same peer under `torch.compile`;
4. for DCGAN-64 also PyTorch's own DCGAN example (ConvTranspose generator), eager, as a familiar
   reference point (it is a smaller generator: see benchmarks/peers/README.md).

It prints images/s and the ratios, and writes benchmarks/results/peers_<model>_<precision>_b<batch>
_<device>.json.

    python benchmarks/compare_peers.py --model dcgan64 --batch 64
    python benchmarks/compare_peers.py --model resnet32 --batch 64 --skip compile
    python benchmarks/compare_peers.py --model dcgan64 --ganjax_result throughput_b1024.json

Config overrides (`--config.model.g_features=16`) go to both ganjax and the peer.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import common  # noqa: E402

#: peer model name -> (label, ganjax config, data shape).
MODELS = {
    'dcgan28': ('DCGAN-28', 'configs/dcgan_mnist.py', '28,28,1'),
    'dcgan64': ('DCGAN-64', 'configs/dcgan_celeba64.py', '64,64,3'),
    'resnet32': ('ResNet-32', 'configs/resnet_cifar10.py', '32,32,3'),
}


#: The environment of the contenders' processes: this one's as it was given.
_CHILD_ENV = dict(os.environ)
# This process only asks jax which platform it has and records the machine: without this, jax
# would take 75% of a GPU's memory (its default preallocation) for as long as the contenders run.
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')


def _run_json(cmd: list[str], out: str, timeout: int) -> dict:
    """Runs a benchmark process that writes JSON to `out`; returns it, or {'error': ...}."""
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env=_CHILD_ENV)
    except subprocess.TimeoutExpired:
        return {'error': f'timed out after {timeout} s'}
    if proc.returncode != 0 or not os.path.exists(out):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {'error': f'exit {proc.returncode}: ' + ' | '.join(tail)}
    with open(out, encoding='utf-8') as f:
        return json.load(f)


def throughput_overrides(args: list[str]) -> dict:
    """`--config.KEY=VALUE` arguments as the dict a throughput.py result records."""
    sys.path.insert(0, ROOT)
    from ganjax import config as config_lib  # noqa: PLC0415 (imports ml_collections only)
    return config_lib.parse_override_args(args)


def main(argv=None) -> int:
    """Runs the comparison and writes its JSON file."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', choices=sorted(MODELS), default='dcgan64')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--precision', choices=('float32', 'bf16'), default='float32')
    p.add_argument('--steps', type=int, default=10, help='timed steps of each contender')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--device', default='', help="torch device (default: cuda if jax sees a GPU)")
    p.add_argument('--skip', default='', help='comma-separated: compile, example')
    p.add_argument('--timeout', type=int, default=1800, help='seconds per contender')
    p.add_argument('--ganjax_result', default='',
                   help="a throughput.py result file of this model to use as ganjax's figure "
                        'instead of running it again (its batch and precision are taken)')
    p.add_argument('--out', default='')
    args, overrides = p.parse_known_args(argv)
    bad = [a for a in overrides if not a.startswith('--config.')]
    if bad:
        p.error(f'unrecognized arguments {bad} (config overrides are --config.KEY=VALUE)')
    skip = set(filter(None, args.skip.split(',')))
    label, config, shape = MODELS[args.model]
    import jax  # noqa: PLC0415
    device = args.device or ('cuda' if jax.devices()[0].platform == 'gpu' else 'cpu')
    tmp = tempfile.mkdtemp(prefix='ganjax_peers_')
    py = sys.executable
    common_args = ['--steps', str(args.steps), '--warmup', str(args.warmup)]

    results = {}
    if args.ganjax_result:
        with open(args.ganjax_result, encoding='utf-8') as f:
            results['ganjax'] = json.load(f)
        given = results['ganjax']
        if given.get('model') != label or given.get('strategy') != 'single':
            p.error(f"--ganjax_result {args.ganjax_result}: a single-device {label} result is "
                    f"needed, it holds {given.get('model')!r} ({given.get('strategy')!r})")
        if given.get('overrides', {}) != throughput_overrides(overrides):
            p.error(f"--ganjax_result {args.ganjax_result}: ran with overrides "
                    f"{given.get('overrides')}, this comparison has {overrides}")
        args.batch, args.precision = given['batch_size'], given['precision']
    else:
        out = os.path.join(tmp, 'ganjax.json')
        results['ganjax'] = _run_json(
            [py, os.path.join(HERE, 'throughput.py'), '--config', config, '--name', label,
             '--data_shape', shape, '--batch', str(args.batch), '--precision', args.precision,
             '--strategy', 'single', '--out', out, *common_args, *overrides], out, args.timeout)
    contenders = [('torch_eager', ['--mode', 'eager'])]
    if 'compile' not in skip:
        contenders.append(('torch_compile', ['--mode', 'compile']))
    if args.model == 'dcgan64' and 'example' not in skip:
        contenders.append(('torch_example_eager', ['--mode', 'eager', '--layers',
                                                   'pytorch_example']))
    environment = common.environment()

    def write() -> str:
        # Written after every contender, so that a run cut off by a timeout keeps the figures
        # it has (the GPU suite gives each section a budget).
        record = {'benchmark': 'peers', 'model': label, 'batch_size': args.batch,
                  'precision': args.precision, 'overrides': throughput_overrides(overrides),
                  'ganjax_result': args.ganjax_result, **environment}
        for name, r in results.items():
            record[f'{name}_images_per_sec'] = r.get('images_per_sec')
        record['results'] = results
        record['not_run_yet'] = [name for name, _ in contenders if name not in results]
        return common.write_result(
            record, args.out, f'peers_{args.model}_{args.precision}_b{args.batch}')

    path = write()
    for name, extra in contenders:
        out = os.path.join(tmp, f'{name}.json')
        results[name] = _run_json(
            [py, os.path.join(HERE, 'peers', 'torch_gan.py'), '--model', args.model,
             '--batch', str(args.batch), '--precision', args.precision, '--device', device,
             '--json', out, *extra, *common_args, *overrides], out, args.timeout)
        path = write()

    ganjax_rate = results['ganjax'].get('images_per_sec')
    print(f'{label}, batch {args.batch}, {args.precision}, on {environment["machine"]}:')
    for name, r in results.items():
        rate = r.get('images_per_sec')
        if rate is None:
            print(f'  {name:22s} {r.get("error")}')
            continue
        ratio = f'   ganjax / this = {ganjax_rate / rate:.2f}x' if ganjax_rate and \
            name != 'ganjax' else ''
        print(f'  {name:22s} {rate:10.1f} images/s{ratio}')
    print(f'-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
