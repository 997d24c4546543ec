"""The loss-variant study: every loss x seeds x a learning-rate grid, one population per dataset.

Lucic et al. 2018 ("Are GANs created equal?") compare losses at their best hyperparameters with
the spread over seeds. This script runs that comparison with `ganjax sweep` (each dataset's
members train as vmapped populations, one program per program shape) and writes the study
report of each (`ganjax report`) with its plots:

    benchmarks/results/loss_study/<dataset>/report.md   (+ report/*.png)
    benchmarks/results/loss_study/<dataset>/run.json    (command, sizes, wall time, machine)

The variants: non-saturating, minimax, hinge, least squares, relativistic average (RaGAN), and
WGAN-GP (Wasserstein loss, gradient penalty 10, 5 critic steps, Adam beta2 0.9 as Gulrajani et al.
2017). The report's primary metric is, on the 2D mixtures (8-Gaussian ring, 25-Gaussian grid), the
number of modes covered by high-quality samples (`ganjax.metrics.mode_statistics`), and on the
MNIST digits classifier FID.

    python benchmarks/loss_study.py                               # all three datasets
    python benchmarks/loss_study.py --datasets ring8 --steps 500  # a quick look
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import population  # noqa: E402
from ganjax import report  # noqa: E402
from configs.loss_study_ring8 import LOSS_VARIANTS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The six variants, as configs/loss_study_ring8.py (`ganjax sweep` of the ring study) names them.
VARIANTS = LOSS_VARIANTS

#: dataset -> (config file, default steps, learning rates (G and D alike), report metric,
#: sweep.members_per_pass (0: all members vmapped, the faster of the two that
#: benchmarks/population.py measured for the DCGAN on this CPU)).
DATASETS = {
    'ring8': ('configs/mlp_ring8.py', 1500, (1e-4, 1e-3), 'modes_covered', 0),
    'grid25': ('configs/mlp_grid25.py', 1500, (1e-4, 1e-3), 'modes_covered', 0),
    'mnist': ('configs/dcgan_mnist.py', 300, (2e-4,), 'fid', 0),
}


def study_config(dataset: str, steps: int, seeds: int, lrs, evals: int):
    """The sweep config of one dataset's study."""
    path, _, _, metric, members_per_pass = DATASETS[dataset]
    config = config_lib.load_config_file(os.path.join(ROOT, path))
    config.train.num_steps = steps
    k = config.train.steps_per_call
    every = max(k, steps // evals // k * k)
    config.train.log_every = max(k, steps // 10 // k * k)
    config.train.sample_every = steps
    config.train.checkpoint_every = steps
    config.train.progress = False
    config.eval.every = every
    config.eval.best_metric = metric
    config.sweep.members_per_pass = members_per_pass
    config.sweep.seeds = tuple(range(seeds))
    config.sweep.variants = VARIANTS
    config.sweep.points = tuple(f'optim.g_lr={lr} optim.d_lr={lr}' for lr in lrs)
    return config


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', default=','.join(DATASETS))
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--steps', type=int, default=0, help='G steps (default: per dataset)')
    p.add_argument('--lrs', default='', help='comma-separated learning rates (default: per '
                                             'dataset)')
    p.add_argument('--evals', type=int, default=3, help='evaluations per member')
    p.add_argument('--workdir', default=os.path.join('runs', 'loss_study'),
                   help='where the sweeps train (resumable; the reports name it)')
    p.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results', 'loss_study'))
    args = p.parse_args(argv)
    for dataset in [d for d in args.datasets.split(',') if d]:
        if dataset not in DATASETS:
            p.error(f'--datasets: {dataset!r} is not one of {sorted(DATASETS)}')
        _, steps, lrs, metric, _ = DATASETS[dataset]
        steps = args.steps or steps
        lrs = tuple(float(v) for v in args.lrs.split(',')) if args.lrs else lrs
        config = study_config(dataset, steps, args.seeds, lrs, args.evals)
        workdir = os.path.join(args.workdir, dataset)
        t0 = time.perf_counter()
        records = population.train_sweep(config, workdir)
        seconds = time.perf_counter() - t0
        unfinished = [i for i, r in enumerate(records)
                      if r is None or (r['step'] < steps and not r.get('diverged_at'))]
        if unfinished:
            # SIGTERM or Ctrl-C stops a sweep cleanly: no report of a study half done.
            print(f'{dataset}: the sweep stopped before every member finished; nothing written '
                  f'(the same command resumes it)', flush=True)
            return 1
        out = os.path.join(args.out, dataset)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        path = report.write_report(workdir, metric=metric, out=os.path.join(out, 'report.md'))
        record = {'benchmark': f'loss_study_{dataset}', 'dataset': dataset,
                  'config': DATASETS[dataset][0], 'steps': steps, 'seeds': args.seeds,
                  'learning_rates': list(lrs), 'variants': list(VARIANTS),
                  'members': len(records),
                  'diverged': [r['index'] for r in records if r.get('diverged_at')],
                  'wall_seconds': seconds,
                  'command': 'python benchmarks/loss_study.py ' + ' '.join(argv or sys.argv[1:]),
                  **common.environment()}
        common.write_result(record, os.path.join(out, 'run.json'), f'loss_study_{dataset}')
        print(f'{dataset}: {len(records)} members in {seconds:.0f} s -> {path}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
