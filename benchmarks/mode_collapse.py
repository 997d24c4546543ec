"""Mode collapse on the 8-Gaussian ring: modes covered and high-quality samples per loss and seed.

Trains configs/mlp_ring8.py once per (loss variant, seed), draws samples from the EMA generator and
scores them with `ganjax.metrics.mode_statistics` (a sample is high quality within 3 std of its
nearest mode; a mode is covered when it gets at least 1/32 of the samples as high-quality ones).
Writes benchmarks/results/mode_collapse_ring8_<device>.json and a PNG of every run's samples.

    python benchmarks/mode_collapse.py                     # 4 variants x 5 seeds, 5000 steps each
    python benchmarks/mode_collapse.py --seeds 1 --steps 500
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import images  # noqa: E402
from ganjax import train as train_lib  # noqa: E402
from ganjax.data.toy import ring8_centers  # noqa: E402
from ganjax.metrics import mode_statistics  # noqa: E402
from ganjax.train_step import make_generate_fn, sample_latent  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: variant -> config overrides on configs/mlp_ring8.py.
VARIANTS = {
    'non_saturating': {'loss.name': 'non_saturating'},
    'hinge': {'loss.name': 'hinge'},
    # Gulrajani et al. 2017: Wasserstein loss, gradient penalty 10, 5 critic updates per G update.
    'wgan_gp': {'loss.name': 'wasserstein', 'penalty.name': 'wgan_gp', 'penalty.weight': 10.0,
                'train.n_critic': 5},
    'least_squares': {'loss.name': 'least_squares'},
}
RING_STD = 0.02


def run_one(variant: str, seed: int, steps: int, num_samples: int, workdir: str) -> dict:
    """Trains one run and scores its EMA generator's samples."""
    config = config_lib.load_config_file(os.path.join(ROOT, 'configs', 'mlp_ring8.py'))
    for key, value in VARIANTS[variant].items():
        section, leaf = key.split('.')
        config[section][leaf] = value
    config.seed = seed
    config.train.num_steps = steps
    config.train.progress = False
    config.train.sample_every = steps
    config.train.checkpoint_every = steps
    config.train.log_every = max(1, steps // 5)
    t0 = time.perf_counter()
    train_lib.train_and_evaluate(config, workdir)
    seconds = time.perf_counter() - t0
    _, gan, state = train_lib.load_run(workdir)
    z = sample_latent(jax.random.PRNGKey(1000 + seed), num_samples, gan.latent_dim)
    x = np.asarray(jax.jit(make_generate_fn(gan))(state.ema_params, state.g_state, z))
    stats = mode_statistics(x, ring8_centers(), RING_STD)
    return {'variant': variant, 'seed': seed, 'steps': steps, 'train_seconds': seconds,
            **stats, 'samples': x}


def main(argv=None) -> int:
    """Runs every variant and seed; writes the JSON and the PNG."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--variants', default=','.join(VARIANTS))
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--steps', type=int, default=5000)
    p.add_argument('--num_samples', type=int, default=2500)
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(',') if v]
    runs = []
    with tempfile.TemporaryDirectory(prefix='ganjax_modes_') as tmp:
        for variant in variants:
            for seed in range(args.seeds):
                r = run_one(variant, seed, args.steps, args.num_samples,
                            os.path.join(tmp, f'{variant}_{seed}'))
                print(f"{variant:15s} seed {seed}: {r['modes_covered']}/8 modes, "
                      f"{100 * r['high_quality']:.1f}% high quality, KL {r['kl_to_uniform']:.3f}"
                      f" ({r['train_seconds']:.0f} s)", flush=True)
                runs.append(r)
    summary = {}
    for variant in variants:
        mine = [r for r in runs if r['variant'] == variant]
        summary[variant] = {
            'seeds_with_8_modes_and_90pct_hq': sum(r['modes_covered'] == 8 and
                                                   r['high_quality'] >= 0.9 for r in mine),
            'mean_modes_covered': float(np.mean([r['modes_covered'] for r in mine])),
            'mean_high_quality': float(np.mean([r['high_quality'] for r in mine]))}
        print(f'{variant:15s} {summary[variant]}')
    record = {'benchmark': 'mode_collapse_ring8', 'steps': args.steps,
              'num_samples': args.num_samples, 'summary': summary,
              'runs': [{k: v for k, v in r.items() if k != 'samples'} for r in runs],
              **common.environment()}
    path = common.write_result(record, args.out, 'mode_collapse_ring8')
    # One scatter per run: rows are variants, columns seeds.
    pictures = [images.samples_figure(r['samples'][:512]) for r in runs]
    rows = [np.concatenate(pictures[i * args.seeds:(i + 1) * args.seeds], axis=1)
            for i in range(len(variants))]
    png = os.path.splitext(path)[0] + '.png'
    images.save_png(np.concatenate(rows, axis=0), png)
    print(f'-> {path}, {png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
