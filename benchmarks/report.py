"""Turns the throughput (and peer) result files into a markdown table and a plot.

    python benchmarks/report.py                 # every device found in benchmarks/results/
    python benchmarks/report.py --device cpu

Writes benchmarks/results/throughput_<device>.md and throughput_<device>.png and prints the
markdown. The plot shows images/s against the global batch, one panel per model, one line per
(strategy, precision), with the PyTorch peers as points where they were measured.
"""

import argparse
import collections
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
MODEL_ORDER = ('DCGAN-28', 'DCGAN-64', 'ResNet-32')


def load(pattern: str) -> list[dict]:
    """Every result file matching `pattern` under results/."""
    records = []
    for path in sorted(glob.glob(os.path.join(RESULTS, pattern))):
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
        record['_file'] = os.path.basename(path)
        records.append(record)
    return records


def _key(r: dict):
    model = r.get('model', '')
    order = MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)
    return (order, model, r.get('strategy', ''), r.get('precision', ''), r.get('batch_size', 0))


def _mb(x) -> str:
    return '' if x is None else f'{x / 2 ** 20:,.0f}'


def _machine(r: dict) -> str:
    """The machine a result ran on (files from before it was recorded: the CPU model, if any)."""
    return r.get('machine') or r.get('cpu_model') or 'not recorded'


def markdown(device: str, runs: list[dict], peers: list[dict], failures: list[dict]) -> str:
    """The table of one device's results."""
    lines = [f'### {device}', '',
             '| model | strategy | devices | precision | batch | images/s | steps/s | step (ms) '
             '| MFU | peak memory (MiB) | compile (s) | machine | file |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in sorted(runs, key=_key):
        mfu = f"{100 * r['mfu']:.1f}%" if r.get('mfu') is not None else ''
        lines.append(
            f"| {r['model']} | {r['strategy']} | {r['num_devices']} | {r['precision']} | "
            f"{r['batch_size']} | {r['images_per_sec']:,.1f} | {r['steps_per_sec']:.2f} | "
            f"{1000 * r['step_s_median']:,.1f} | {mfu} | {_mb(r.get('peak_memory_bytes'))} | "
            f"{r['compile_s']:.1f} | {_machine(r)} | {r['_file']} |")
    if failures:
        lines += ['', 'Cells that did not complete:', '']
        for f in failures:
            for cell in f['failures']:
                lines.append(f"- {cell['model']} {cell['strategy']} {cell['precision']} batch "
                             f"{cell['batch_size']}: {cell['error']}")
    if peers:
        lines += ['', '| model | precision | batch | ganjax images/s | PyTorch eager | '
                  'torch.compile | ganjax / eager | ganjax / compile | machine | file |',
                  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
        for p in sorted(peers, key=_key):
            def fmt(key):
                v = p.get(key)
                return '' if v is None else f'{v:,.1f}'

            def ratio(key):
                v = p.get(key)
                return '' if not v else f"{p['ganjax_images_per_sec'] / v:.2f}x"
            lines.append(
                f"| {p['model']} | {p['precision']} | {p['batch_size']} | "
                f"{fmt('ganjax_images_per_sec')} | {fmt('torch_eager_images_per_sec')} | "
                f"{fmt('torch_compile_images_per_sec')} | {ratio('torch_eager_images_per_sec')} "
                f"| {ratio('torch_compile_images_per_sec')} | {_machine(p)} | {p['_file']} |")
    return '\n'.join(lines) + '\n'


def plot(device: str, runs: list[dict], peers: list[dict], path: str) -> None:
    """images/s against batch, one panel per model."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415

    models = sorted({r['model'] for r in runs}, key=lambda m: _key({'model': m}))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        lines = collections.defaultdict(list)
        for r in runs:
            if r['model'] == model:
                lines[(r['strategy'], r['precision'])].append((r['batch_size'],
                                                               r['images_per_sec']))
        for (strategy, precision), points in sorted(lines.items()):
            points.sort()
            ax.plot(*zip(*points), marker='o', label=f'ganjax {strategy} {precision}')
        for p in peers:
            if p['model'] != model:
                continue
            for key, marker, label in (('torch_eager_images_per_sec', 's', 'PyTorch eager'),
                                       ('torch_compile_images_per_sec', '^', 'torch.compile')):
                if p.get(key):
                    ax.scatter([p['batch_size']], [p[key]], marker=marker, s=60, zorder=3,
                               label=f"{label} {p['precision']}")
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xlabel('global batch')
        ax.set_ylabel('images / s')
        ax.set_title(f'{model} on {device}')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    """Writes the table and plot of each device's results."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='', help='device kind as in the file names (cpu, ...)')
    args = p.parse_args(argv)
    runs = [r for r in load('throughput_*.json') if r.get('benchmark') == 'throughput']
    failures = load('throughput_failures_*.json')
    peers = [r for r in load('peers_*.json') if r.get('benchmark') == 'peers']
    devices = sorted({r['device_kind'] for r in runs})
    if args.device:
        devices = [d for d in devices if d.replace(' ', '_') == args.device or d == args.device]
    if not devices:
        print('no throughput results found', file=sys.stderr)
        return 1
    for device in devices:
        mine = [r for r in runs if r['device_kind'] == device]
        mine_peers = [r for r in peers if r['device_kind'] == device]
        mine_fail = [r for r in failures if r['device_kind'] == device]
        text = markdown(device, mine, mine_peers, mine_fail)
        stem = os.path.join(RESULTS, f"throughput_{device.replace(' ', '_')}")
        with open(stem + '.md', 'w', encoding='utf-8') as f:
            f.write(text)
        plot(device, mine, mine_peers, stem + '.png')
        print(text)
        print(f'-> {stem}.md, {stem}.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
