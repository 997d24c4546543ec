"""ganjax's DNA WGAN-GP step against its PyTorch peer, side by side on the same machine, in one run.

For each batch size this runs, one after the other and each in its own process (so they never
share the cores):

1. ganjax's compiled step (`throughput.py`, one device) for configs/dna_wgan_gp.py (Killoran et
   al.'s 1D ResNet: 5 blocks of 100 channels, kernel 5, WGAN-GP with 5 critic steps);
2. the PyTorch peer of the same model and step (benchmarks/peers/torch_dna.py, FBGAN's layers),
   eager;
3. the same peer under `torch.compile` (unless --skip compile).

Sequences/s count real sequences consumed (batch x n_critic per step), compile time left out.
It prints the rates and ratios, the machine's load average before and after (timings taken while
other work runs are not comparable), and writes
benchmarks/results/dna/peers_dna_b<batches>_<device>.json.

    python benchmarks/dna_peers.py --batch 64,256
    python benchmarks/dna_peers.py --batch 64 --skip compile --steps 5
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

CONFIG = 'configs/dna_wgan_gp.py'


def _run_json(cmd: list[str], out: str, timeout: int) -> dict:
    """Runs a benchmark process that writes JSON to `out`; returns it, or {'error': ...}."""
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'error': f'timed out after {timeout} s'}
    if proc.returncode != 0 or not os.path.exists(out):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {'error': f'exit {proc.returncode}: ' + ' | '.join(tail)}
    with open(out, encoding='utf-8') as f:
        return json.load(f)


def main(argv=None) -> int:
    """Runs the comparison and writes its JSON file."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', default='64,256', help='comma-separated batch sizes')
    p.add_argument('--length', type=int, default=64)
    p.add_argument('--steps', type=int, default=10, help='timed steps of each contender')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--skip', default='', help='comma-separated: compile')
    p.add_argument('--timeout', type=int, default=1800, help='seconds per contender')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batch.split(',')]
    skip = set(filter(None, args.skip.split(',')))
    tmp = tempfile.mkdtemp(prefix='ganjax_dna_peers_')
    py = sys.executable
    timing = ['--steps', str(args.steps), '--warmup', str(args.warmup)]
    record = {'benchmark': 'dna_peers', 'config': CONFIG, 'length': args.length,
              'load_before': os.getloadavg(), **common.environment(), 'results': {}}
    for batch in batches:
        results = {}
        out = os.path.join(tmp, f'ganjax_{batch}.json')
        results['ganjax'] = _run_json(
            [py, os.path.join(HERE, 'throughput.py'), '--config', CONFIG, '--name', 'dna_resnet1d',
             '--data_shape', f'{args.length},4', '--batch', str(batch), '--strategy', 'single',
             '--no_flops', '--out', out, *timing], out, args.timeout)
        if 'images_per_sec' in results['ganjax']:
            results['ganjax']['sequences_per_sec'] = results['ganjax']['images_per_sec']
        modes = ['eager'] + ([] if 'compile' in skip else ['compile'])
        for mode in modes:
            out = os.path.join(tmp, f'torch_{mode}_{batch}.json')
            results[f'torch_{mode}'] = _run_json(
                [py, os.path.join(HERE, 'peers', 'torch_dna.py'), '--batch', str(batch),
                 '--length', str(args.length), '--mode', mode, '--json', out, *timing], out,
                args.timeout)
        record['results'][str(batch)] = results
        rate = results['ganjax'].get('sequences_per_sec')
        print(f'DNA 1D ResNet WGAN-GP, length {args.length}, batch {batch}, on '
              f'{record["device_kind"]}:')
        for name, r in results.items():
            own = r.get('sequences_per_sec')
            if own is None:
                print(f'  {name:14s} {r.get("error")}')
                continue
            ratio = (f'   ganjax / this = {rate / own:.2f}x' if rate and name != 'ganjax'
                     else '')
            print(f'  {name:14s} {own:10.1f} sequences/s{ratio}')
    record['load_after'] = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {record['load_before']}, after "
          f"{record['load_after']}")
    kind = record['device_kind'].replace(' ', '_')
    out = args.out or os.path.join(common.RESULTS_DIR, 'dna',
                                   f"peers_dna_b{'_'.join(map(str, batches))}_{kind}.json")
    path = common.write_result(record, out, '')
    print(f'-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
