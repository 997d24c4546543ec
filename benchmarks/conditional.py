"""Conditional generation on the embedded digits: does G draw the digit it is asked for?

Trains configs/cdcgan_mnist.py (or resumes it, or finds it complete) in --workdir, evaluating
with the digits' feature classifier every 1000 steps, then scores the final EMA generator with
`ganjax eval`: conditional accuracy (the share of samples of class k that the classifier calls
k), the classifier's accuracy on real held-out digits, FID and per-class FID. Writes
benchmarks/results/conditional_mnist_<g_conditioning>_<device>.json.

    python benchmarks/conditional.py --workdir runs/cdcgan_mnist            # ~10 min on 2 cores
    python benchmarks/conditional.py --workdir runs/cdcgan_norm --g_conditioning norm
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import evaluate, summaries  # noqa: E402
from ganjax import train as train_lib  # noqa: E402
from ganjax.metrics import features as features_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs', 'cdcgan_mnist.py')


def main(argv=None) -> int:
    """Trains (or resumes) and evaluates; writes the result file."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workdir', required=True, help='the run (resumed if it exists)')
    p.add_argument('--g_conditioning', default='', help="override model.g_conditioning "
                                                        "(norm | concat | both)")
    p.add_argument('--features', default=os.path.join(ROOT, 'features', 'mnist_5k'),
                   help='the digits classifier (trained here if missing)')
    p.add_argument('--num', type=int, default=500, help='samples per evaluation')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    config = config_lib.load_config_file(CONFIG)
    if args.g_conditioning:
        config.model.g_conditioning = args.g_conditioning
    config.train.progress = False
    config.eval.features_dir = args.features
    config.eval.num_samples = args.num
    if not os.path.exists(os.path.join(args.features, 'classifier.msgpack')):
        features_lib.train_classifier(config.data, args.features,
                                      log=lambda m: print(f'[features] {m}'))
    t0 = time.perf_counter()
    train_lib.train_and_evaluate(config, args.workdir)
    seconds = time.perf_counter() - t0
    final = evaluate.evaluate(args.workdir, num=args.num, features_dir=args.features)
    history = summaries.read_jsonl(os.path.join(args.workdir, 'eval', 'history.jsonl'))
    keys = ('fid', 'precision', 'recall', 'cond_acc', 'real_acc', 'fid_per_class')
    record = {
        'benchmark': 'conditional_mnist', 'config': 'configs/cdcgan_mnist.py',
        'g_conditioning': config.model.g_conditioning, 'd_head': config.model.d_head,
        'command': 'python benchmarks/conditional.py ' + ' '.join(argv or sys.argv[1:]),
        # Paths relative to the repository, so the record names no machine's folders.
        'num_samples': final['num'], 'features': final['features'].replace(ROOT + os.sep, ''),
        'seconds_this_call': seconds,
        'final': {'step': final['step'], 'generator': final['generator']},
        'real_vs_real': final['real_vs_real'],
        'history': [{k: h[k] for k in ('step',) + keys if k in h} for h in history],
        **common.environment()}
    path = common.write_result(record, args.out,
                               f'conditional_mnist_{config.model.g_conditioning}')
    print(evaluate.format_table(final))
    print(f'-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
