"""Small-data benchmark: DCGAN on 10% of the embedded digits, with and without DiffAugment.

Trains configs/dcgan_mnist.py on a fixed random subset of `--examples` (450) of the 4,500
training digits (`data.train_examples`, drawn with data.split_seed=0, so every run sees the same
digits) for `--steps` steps, once per augmentation policy and seed, and evaluates the EMA
generator every `--eval_every` steps against the 500 held-out digits with classifier features
(classifier FID, precision/recall, ...; `eval.features=classifier`). Writes per-run numbers, the
mean and standard deviation over seeds per policy, the commands that reproduce each run and the
CPU model to benchmarks/results/small_data_<device>.json, rewritten after every run, so an
interrupted benchmark keeps what it finished (rerunning skips complete runs).

    python benchmarks/small_data.py                  # 3 policies x 3 seeds, ~1 h on 2 busy cores
    python benchmarks/small_data.py --policies '' 'translation,cutout' --seeds 0

Reference: Zhao et al. 2020 (DiffAugment), CIFAR-10 with 10% of the data, StyleGAN2: FID 36.0
without augmentation, 14.5 with 'color,translation,cutout'.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import summaries  # noqa: E402
from ganjax import train as train_lib  # noqa: E402
from ganjax.metrics import features as features_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'configs/dcgan_mnist.py'
METRICS = ('fid', 'kid', 'precision', 'recall', 'density', 'coverage')


def overrides(args, policy: str, seed: int) -> dict[str, str]:
    """The `--config.KEY=VALUE` overrides of one run, as text."""
    return {'seed': str(seed), 'data.train_examples': str(args.examples),
            'augment.policy': policy, 'train.num_steps': str(args.steps),
            'train.checkpoint_every': str(args.eval_every), 'train.sample_every': str(args.steps),
            'train.progress': 'false', 'eval.every': str(args.eval_every),
            'eval.num_samples': str(args.num), 'eval.features': 'classifier',
            'eval.features_dir': args.features}


def command(workdir: str, flags: dict[str, str]) -> str:
    """The `ganjax train` command line that reproduces one run."""
    parts = [f"--config.{k}='{v}'" if v == '' or ',' in v else f'--config.{k}={v}'
             for k, v in flags.items()]
    return f'ganjax train --config {CONFIG} --workdir {workdir} ' + ' '.join(parts)


def run_one(args, policy: str, seed: int) -> dict:
    """Trains (or resumes) one run and returns its record."""
    name = f"{policy.replace(',', '+') or 'none'}_seed{seed}"
    workdir = os.path.join(args.workdir, name)
    flags = overrides(args, policy, seed)
    config = config_lib.load_config_file(os.path.join(ROOT, CONFIG))
    config_lib.apply_overrides(config, flags)
    t0 = time.perf_counter()
    train_lib.train_and_evaluate(config, workdir)
    seconds = time.perf_counter() - t0
    history = summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'))
    logged = summaries.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    last = logged[-1] if logged else {}
    final = history[-1]
    return {'policy': policy, 'seed': seed, 'workdir': workdir,
            'command': command(workdir, flags), 'seconds': seconds,
            'final_step': final['step'], 'final': {k: final[k] for k in METRICS if k in final},
            'history': [{k: h[k] for k in ('step',) + METRICS if k in h} for h in history],
            # D's overfitting signs late in the run: its accuracy on reals and ADA's r_t.
            'last_logged': {k: last[k] for k in ('step', 'd_acc_real', 'd_acc_fake', 'd_loss',
                                                 'ada_rt', 'augment_p') if k in last}}


def aggregate(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each policy's final metrics."""
    out = {}
    for policy in dict.fromkeys(r['policy'] for r in runs):
        finals = [r['final'] for r in runs if r['policy'] == policy]
        out[policy or 'none'] = {
            'seeds': len(finals),
            **{k: {'mean': statistics.fmean(f[k] for f in finals),
                   'std': statistics.stdev(f[k] for f in finals) if len(finals) > 1 else 0.0}
               for k in METRICS if all(k in f for f in finals)}}
    return out


def main(argv=None) -> int:
    """Runs the benchmark; returns 0."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--policies', nargs='+',
                   default=['', 'translation,cutout', 'color,translation,cutout'])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--examples', type=int, default=450, help='training digits kept')
    p.add_argument('--steps', type=int, default=1500)
    p.add_argument('--eval_every', type=int, default=500)
    p.add_argument('--num', type=int, default=500, help='samples per evaluation (the embedded '
                                                        'digits hold out 500)')
    p.add_argument('--features', default=os.path.join('features', 'mnist_5k'),
                   help='classifier folder of `ganjax train-features` (trained if missing)')
    p.add_argument('--workdir', default=os.path.join('runs', 'small_data'))
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    if not os.path.isdir(args.features):
        config = config_lib.load_config_file(os.path.join(ROOT, CONFIG))
        features_lib.train_classifier(config.data, args.features,
                                      log=lambda m: print(f'[features] {m}'))
    _, _, info = features_lib.load_classifier(args.features)
    runs = []
    path = ''
    # Seeds outermost: an interrupted benchmark has compared every policy on the first seeds.
    for seed in args.seeds:
        for policy in args.policies:
            runs.append(run_one(args, policy, seed))
            r = runs[-1]
            print(f"[small_data] policy={r['policy'] or 'none'} seed={seed}: "
                  + ', '.join(f'{k} {v:.3f}' for k, v in r['final'].items())
                  + f" ({r['seconds']:.0f} s)", flush=True)
            record = {
                'benchmark': 'small_data', 'config': CONFIG, 'train_examples': args.examples,
                'steps': args.steps, 'batch_size': 64, 'eval_every': args.eval_every,
                'num_samples': args.num, 'features': args.features,
                'classifier_held_out_accuracy': info.get('held_out_accuracy'),
                'summary': aggregate(runs), 'runs': runs,
                **common.environment()}
            path = common.write_result(record, args.out, 'small_data')
    print(f'-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
