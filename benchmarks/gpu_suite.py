"""The two ends of benchmarks/gpu_suite.sh: a dependency and device check, and the summary table.

    python benchmarks/gpu_suite.py preflight [--dry-run]    # exit 1, with the fix, if unready
    python benchmarks/gpu_suite.py summary RESULTS_DIR       # table of the suite's result files

`preflight` imports every package the suite's scripts need before any section runs, so that a
missing one fails the suite in seconds with the way to bring it, rather than minutes in; it
prints the file-safe device name the suite puts in its file names. `summary` reads the result
files the sections wrote and the sections' status file, prints the table with the targets (from
the project's goals) and writes summary_<device>.md and .json beside them.
"""

import argparse
import glob
import importlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

#: The packages the suite's scripts import: (import name, pip name). The device image has the
#: first group; ganjax's other dependencies that the suite imports must travel as wheels.
ON_DEVICE = (('jax', 'jax'), ('flax', 'flax'), ('optax', 'optax'),
             ('orbax.checkpoint', 'orbax-checkpoint'), ('chex', 'chex'), ('numpy', 'numpy'),
             ('PIL', 'pillow'), ('matplotlib', 'matplotlib'), ('tqdm', 'tqdm'),
             ('tifffile', 'tifffile'), ('torch', 'torch'))
#: ml_collections: every ganjax config; tensorboardX: the population section trains end to end
#: (its summaries). grain and tensorflow-datasets are not imported by the suite.
BROUGHT = (('ml_collections', 'ml_collections'), ('tensorboardX', 'tensorboardX'))

#: Targets the summary checks (the project's goals for one H100/H200).
TARGETS = {
    'dcgan64_mfu': 0.35,          # DCGAN-64 bf16, batch >= 1024
    'dcgan64_vs_compile': 1.5,    # ganjax / torch.compile, same model, batch and precision
    'resnet32_mfu': 0.30,
}

FIX = """Missing Python packages: {missing}.
Bring them as wheels (the device has no registry): on a machine with pip access, in the
repository root,
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \\
        --platform manylinux2014_x86_64 -d wheels {pips}
(--no-deps: their own needs, absl-py, PyYAML, protobuf, packaging, numpy, are on the device;
name any that is not), carry wheels/ along, and run the suite as
    GANJAX_WHEELS=wheels bash benchmarks/gpu_suite.sh
which installs them (pip install --no-index --find-links wheels --target ...) before it starts.
See benchmarks/README.md, 'The GPU suite'."""


def safe_name(text: str) -> str:
    """`text` with every character outside [A-Za-z0-9._-] replaced by '_' (file names)."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', text).strip('_') or 'unknown'


def preflight(dry_run: bool) -> int:
    """Checks the suite's imports and (unless `dry_run`) that jax and torch see a GPU.

    Args:
      dry_run: the CPU dry run: no GPU needed.

    Returns:
      0 when ready (the device's file-safe name printed on stdout's last line), else 1 with the
      fix on stderr.
    """
    missing = []
    for module, pip_name in ON_DEVICE + BROUGHT:
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing.append((pip_name, str(e)))
    if missing:
        print(FIX.format(missing=', '.join(f'{p} ({e})' for p, e in missing),
                         pips=' '.join(p for p, _ in missing)), file=sys.stderr)
        return 1
    import jax  # noqa: PLC0415
    import torch  # noqa: PLC0415
    device = jax.devices()[0]
    print(f'jax {jax.__version__}: {jax.device_count()} x {device.device_kind} '
          f'({device.platform}); torch {torch.__version__}, cuda available: '
          f'{torch.cuda.is_available()}', file=sys.stderr)
    if not dry_run:
        if device.platform != 'gpu':
            print(f'jax sees no GPU (platform {device.platform!r}): is jax[cuda] installed and '
                  'the GPU visible? Use --dry-run for the CPU check.', file=sys.stderr)
            return 1
        if not torch.cuda.is_available():
            print('torch sees no GPU (torch.cuda.is_available() is False): the peers would '
                  'run on the CPU. Use a CUDA build of torch.', file=sys.stderr)
            return 1
    print(safe_name(device.device_kind))
    return 0


def _load(path: str) -> dict | None:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _pct(x) -> str:
    return '' if x is None else f'{100 * x:.1f}%'


def _num(x) -> str:
    return '' if x is None else f'{x:,.1f}'


def _check(value, target) -> str:
    if value is None:
        return 'not measured'
    return 'met' if value >= target else 'MISSED'


def summarize(results_dir: str) -> tuple[list[dict], dict]:
    """The suite's figures from its result files in `results_dir`.

    Args:
      results_dir: where gpu_suite.sh wrote (it names files <section>_<device>.json).

    Returns:
      (rows of {section, what, value, target, verdict, file}, the sections' status).
    """
    status = {}
    status_path = os.path.join(results_dir, 'sections.tsv')
    if os.path.exists(status_path):
        with open(status_path, encoding='utf-8') as f:
            for line in f:
                name, state, seconds, budget = line.rstrip('\n').split('\t')
                status[name] = {'status': state, 'seconds': float(seconds),
                                'budget_s': float(budget)}

    def find(section):
        paths = sorted(glob.glob(os.path.join(results_dir, f'{section}_*.json')))
        return (paths[0], _load(paths[0])) if paths else (None, None)

    rows = []

    def add(section, what, value, target='', verdict='', path=None):
        rows.append({'section': section, 'what': what, 'value': value, 'target': target,
                     'verdict': verdict, 'file': os.path.basename(path) if path else ''})

    path, r = find('dcgan64_bf16_b1024')
    if r:
        add('dcgan64_bf16_b1024', f"DCGAN-64 bf16 batch {r['batch_size']}: images/s",
            _num(r['images_per_sec']), path=path)
        add('dcgan64_bf16_b1024', f"DCGAN-64 bf16 MFU ({r.get('peak_flops_source', '')})",
            _pct(r.get('mfu')), f">= {_pct(TARGETS['dcgan64_mfu'])}",
            _check(r.get('mfu'), TARGETS['dcgan64_mfu']), path)
    for section, label, target in (('dcgan28_sweep', 'DCGAN-28', None),
                                   ('resnet32_sweep', 'ResNet-32', TARGETS['resnet32_mfu'])):
        path, r = find(section)
        if not r:
            continue
        swept = ', '.join(f"{s['batch_size']}: {_num(s.get('images_per_sec')) or 'failed'}"
                          for s in r.get('sweep', []))
        add(section, f"{label} {r['precision']} best batch {r['batch_size']} (images/s by "
            f"batch: {swept})", _num(r['images_per_sec']), path=path)
        add(section, f'{label} MFU at batch {r["batch_size"]}', _pct(r.get('mfu')),
            f'>= {_pct(target)}' if target else '',
            _check(r.get('mfu'), target) if target else '', path)
    path, r = find('dcgan64_jit_all')
    if r:
        add('dcgan64_jit_all', f"DCGAN-64 bf16 batch {r['batch_size']}, sharded jit on "
            f"{r['num_devices']} device(s): images/s", _num(r['images_per_sec']), path=path)
    for section, label in (('peers_dcgan64', 'DCGAN-64'), ('peers_resnet32', 'ResNet-32')):
        path, r = find(section)
        if not r:
            continue
        mine = r.get('ganjax_images_per_sec')
        for peer, name in (('torch_eager', 'PyTorch eager'), ('torch_compile', 'torch.compile')):
            theirs = r.get(f'{peer}_images_per_sec')
            ratio = mine / theirs if mine and theirs else None
            target = TARGETS['dcgan64_vs_compile'] if (
                section == 'peers_dcgan64' and peer == 'torch_compile') else None
            error = (r.get('results', {}).get(peer) or {}).get('error')
            if peer in r.get('not_run_yet', []):
                error = 'cut off by the section budget'
            elif peer not in r.get('results', {}):
                error = 'skipped'
            add(section, f"{label} {r['precision']} batch {r['batch_size']}: ganjax / {name} "
                f"({_num(mine)} / {_num(theirs) or error or 'not run'} images/s)",
                '' if ratio is None else f'{ratio:.2f}x',
                f'>= {target}x' if target else '', _check(ratio, target) if target else '',
                path)
    path, r = find('upsample')
    if r:
        by = {}
        for rec in r.get('results', []):
            by.setdefault((rec['benchmark'], tuple(rec['output_shape'])), {})[rec['mode']] = rec
        for (bench, shape), modes in by.items():
            times = {m: v['step_s_median'] for m, v in modes.items()}
            best = min(times, key=times.get)
            add('upsample', f"{bench} {'x'.join(map(str, shape))}: fastest upsampling "
                f"({', '.join(f'{m} {1e3 * t:.2f} ms' for m, t in times.items())})", best,
                path=path)
    path, r = find('population')
    if r:
        for row in r.get('rows', []):
            add('population', f"{row['model']} K={row['members']}: population / sequential "
                f"(end to end, steady state)", f"{row['speedup_end_to_end']:.2f}x, "
                f"{row['speedup_steady']:.2f}x", path=path)
    return rows, status


def summary(results_dir: str, device: str = 'unknown') -> int:
    """Prints the summary table and writes summary_<device>.md/.json in `results_dir`.

    Args:
      results_dir: the suite's results folder.
      device: the machine's name where no result file records one (every section failed).
    """
    rows, status = summarize(results_dir)
    for path in sorted(glob.glob(os.path.join(results_dir, '*.json'))):
        r = _load(path)
        if r and r.get('machine'):
            device = r['machine']
            break
    lines = [f'## ganjax GPU suite on {device}', '', '| section | status | seconds (budget) |',
             '| --- | --- | --- |']
    for name, s in status.items():
        lines.append(f"| {name} | {s['status']} | {s['seconds']:.0f} ({s['budget_s']:.0f}) |")
    lines += ['', '| figure | value | target | verdict | file |', '| --- | --- | --- | --- | --- |']
    for row in rows:
        lines.append(f"| {row['what']} | {row['value']} | {row['target']} | {row['verdict']} | "
                     f"{row['file']} |")
    text = '\n'.join(lines) + '\n'
    print(text)
    stem = os.path.join(results_dir, f'summary_{safe_name(device)}')
    with open(stem + '.md', 'w', encoding='utf-8') as f:
        f.write(text)
    with open(stem + '.json', 'w', encoding='utf-8') as f:
        json.dump({'device': device, 'sections': status, 'rows': rows, 'targets': TARGETS}, f,
                  indent=2)
    print(f'-> {stem}.md, {stem}.json')
    return 0


def main(argv=None) -> int:
    """preflight | summary."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    pre = sub.add_parser('preflight', help='check the imports and the device')
    pre.add_argument('--dry-run', action='store_true', help='CPU: no GPU needed')
    summ = sub.add_parser('summary', help='the table of a results folder')
    summ.add_argument('results_dir')
    summ.add_argument('--device', default='unknown',
                      help='machine name if no result file records one')
    args = p.parse_args(argv)
    if args.cmd == 'preflight':
        return preflight(args.dry_run)
    return summary(args.results_dir, args.device)


if __name__ == '__main__':
    sys.exit(main())
