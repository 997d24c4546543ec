"""Mode collapse on 2D Gaussian mixtures: modes covered and high-quality samples per loss and seed.

Trains configs/mlp_ring8.py (or --config, e.g. configs/mlp_grid25.py) once per (loss variant,
seed), all of them as one `ganjax sweep` (a vmapped population per program shape); each member's
own evaluations (`eval.every`) score its EMA generator with
`ganjax.metrics.mode_statistics` (a sample is high quality within 3 std of its nearest mode; a mode
is covered when it gets at least 1/4 of its uniform share as high-quality samples) on fixed noise,
several times over training. Writes benchmarks/results/mode_collapse_<data.name>_<device>.json, a
PNG of every run's final samples (rows: variants, columns: seeds) and per variant a PNG of the
samples over training (rows: seeds).

    python benchmarks/mode_collapse.py            # 4 variants x 5 seeds, the config's 10000 steps
    python benchmarks/mode_collapse.py --seeds 1 --steps 500
    python benchmarks/mode_collapse.py --config configs/mlp_grid25.py
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import data  # noqa: E402
from ganjax import images  # noqa: E402
from ganjax import population  # noqa: E402
from ganjax import summaries  # noqa: E402
from ganjax import train as train_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: variant -> config overrides on the mixture's config.
VARIANTS = {
    'non_saturating': {'loss.name': 'non_saturating'},
    'hinge': {'loss.name': 'hinge'},
    # Gulrajani et al. 2017: Wasserstein loss, gradient penalty 10, 5 critic updates per G update,
    # Adam's beta2 0.9 as in their experiments.
    'wgan_gp': {'loss.name': 'wasserstein', 'penalty.name': 'wgan_gp', 'penalty.weight': 10.0,
                'train.n_critic': 5, 'optim.b2': 0.9},
    'least_squares': {'loss.name': 'least_squares'},
}


def sweep_config(config_path: str, variants: list[str], seeds: int, steps: int,
                 num_samples: int, snapshots: int):
    """The sweep config: every variant x seed as a member of one `ganjax sweep`.

    The evaluations are each member's own (`eval.every`): modes covered, high-quality fraction
    and KL from `ganjax.metrics.mode_statistics` on `num_samples` samples from fixed noise,
    beside FID, precision and recall of the raw 2D points.
    """
    config = config_lib.load_config_file(config_path)
    every = max(1, steps // snapshots)
    config.train.num_steps = steps
    config.train.progress = False
    config.train.sample_every = every
    config.train.checkpoint_every = steps
    config.train.log_every = every
    config.eval.every = every
    config.eval.num_samples = num_samples
    config.eval.batch_size = num_samples
    config.eval.features = 'raw'
    config.sweep.seeds = tuple(range(seeds))
    config.sweep.variants = tuple(
        f"{v}: {' '.join(f'{k}={val}' for k, val in VARIANTS[v].items())}" for v in variants)
    return config


def member_result(workdir: str, record: dict, steps: int, num_modes: int,
                  seconds: float) -> dict:
    """One member's summary, from its folder (DIR/members/NNN)."""
    folder = os.path.join(workdir, record['dir'])
    history = summaries.read_jsonl(os.path.join(folder, 'eval', 'history.jsonl'))
    # A member that diverged before its first evaluation has none: it covers no mode.
    nan = float('nan')
    final = history[-1] if history else {'modes_covered': 0, 'high_quality': 0.0,
                                         'kl_to_uniform': nan, 'fid': nan, 'precision': nan,
                                         'recall': nan}
    pictures = [np.asarray(Image.open(os.path.join(folder, 'samples',
                                                   f'step_{r["step"]:07d}.png')).convert('RGB'))
                for r in history]
    return {'variant': record['variant'], 'seed': record['seed'], 'steps': steps,
            'sweep_seconds': seconds, 'diverged_at': record.get('diverged_at'),
            'num_modes': num_modes,
            'modes_covered': int(final['modes_covered']), 'high_quality': final['high_quality'],
            'kl_to_uniform': final['kl_to_uniform'], 'fid': final['fid'],
            'precision': final['precision'], 'recall': final['recall'],
            'history': [{k: r[k] for k in ('step', 'modes_covered', 'high_quality',
                                           'kl_to_uniform', 'fid')} for r in history],
            'pictures': pictures}


def _label(picture: np.ndarray, text: str) -> np.ndarray:
    """The picture with a line of text in a white band above it."""
    img = Image.new('RGB', (picture.shape[1], picture.shape[0] + 18), 'white')
    img.paste(Image.fromarray(picture), (0, 18))
    ImageDraw.Draw(img).text((4, 3), text, fill='black')
    return np.asarray(img)


def main(argv=None) -> int:
    """Runs every variant and seed; writes the JSON, the final-samples PNG and one PNG per
    variant of the samples over training."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=os.path.join(ROOT, 'configs', 'mlp_ring8.py'),
                   help='a config on a Gaussian mixture (ring8, grid25)')
    p.add_argument('--variants', default=','.join(VARIANTS))
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--steps', type=int, default=0, help='G steps (default: the config\'s)')
    p.add_argument('--num_samples', type=int, default=2500)
    p.add_argument('--snapshots', type=int, default=5, help='evaluations and pictures per run')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(',') if v]
    config = config_lib.load_config_file(args.config)
    name = config.data.name
    if not hasattr(data.build_source(config.data, 'eval'), 'centers'):
        p.error(f'{args.config}: data.name={name!r} is not a Gaussian mixture (ring8, grid25)')
    steps = args.steps or config.train.num_steps
    runs = []
    num_modes = data.build_source(config.data, 'eval').num_classes
    with tempfile.TemporaryDirectory(prefix='ganjax_modes_') as tmp:
        # Every variant and seed in one sweep: one vmapped program per program shape.
        workdir = os.path.join(tmp, 'sweep')
        t0 = time.perf_counter()
        records = population.train_sweep(
            sweep_config(args.config, variants, args.seeds, steps, args.num_samples,
                         args.snapshots), workdir)
        seconds = time.perf_counter() - t0
        if any(r is None or (r['step'] < steps and not r.get('diverged_at')) for r in records):
            # A signal stops a sweep cleanly; a benchmark must not record a shortened run.
            raise SystemExit('the sweep stopped before every member finished; no results '
                             'written')
        for record in records:
            r = member_result(workdir, record, steps, num_modes, seconds)
            print(f"{r['variant']:15s} seed {r['seed']}: {r['modes_covered']}/{num_modes} modes, "
                  f"{100 * r['high_quality']:.1f}% high quality, KL {r['kl_to_uniform']:.3f}"
                  + (f" (diverged at step {r['diverged_at']})" if r['diverged_at'] else ''),
                  flush=True)
            runs.append(r)
    print(f'{len(runs)} members trained in {seconds:.0f} s', flush=True)
    summary = {}
    for variant in variants:
        mine = [r for r in runs if r['variant'] == variant]
        summary[variant] = {
            'seeds_with_all_modes_and_90pct_hq': sum(r['modes_covered'] == r['num_modes'] and
                                                     r['high_quality'] >= 0.9 for r in mine),
            'mean_modes_covered': float(np.mean([r['modes_covered'] for r in mine])),
            'mean_high_quality': float(np.mean([r['high_quality'] for r in mine]))}
        print(f'{variant:15s} {summary[variant]}')
    record = {'benchmark': f'mode_collapse_{name}', 'steps': steps, 'sweep_seconds': seconds,
              'num_samples': args.num_samples, 'config': os.path.relpath(args.config, ROOT),
              'optim': {'g_lr': config.optim.g_lr, 'd_lr': config.optim.d_lr,
                        'b1': config.optim.b1, 'b2': config.optim.b2},
              'variants': VARIANTS, 'summary': summary,
              'runs': [{k: v for k, v in r.items() if k != 'pictures'} for r in runs],
              **common.environment()}
    path = common.write_result(record, args.out, f'mode_collapse_{name}')
    base = os.path.splitext(path)[0]
    # Final samples: rows are variants, columns seeds.
    finals = [_label(r['pictures'][-1], f"{r['variant']} seed {r['seed']}: "
                     f"{r['modes_covered']}/{r['num_modes']}, {100 * r['high_quality']:.0f}% HQ")
              for r in runs]
    rows = [np.concatenate(finals[i * args.seeds:(i + 1) * args.seeds], axis=1)
            for i in range(len(variants))]
    images.save_png(np.concatenate(rows, axis=0), base + '.png')
    written = [base + '.png']
    # Over training, one picture per variant: rows are seeds, columns the evaluated steps.
    for variant in variants:
        rows = []
        for r in (r for r in runs if r['variant'] == variant):
            rows.append(np.concatenate(
                [_label(pic, f"seed {r['seed']} step {h['step']}: "
                             f"{int(h['modes_covered'])}/{r['num_modes']}, "
                             f"{100 * h['high_quality']:.0f}% HQ")
                 for pic, h in zip(r['pictures'], r['history'])], axis=1))
        images.save_png(np.concatenate(rows, axis=0), f'{base}_{variant}_over_training.png')
        written.append(f'{base}_{variant}_over_training.png')
    print(f'-> {path}, ' + ', '.join(written))
    return 0


if __name__ == '__main__':
    sys.exit(main())
