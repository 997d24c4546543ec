"""Quality figures: the demo's sample quality against the real-vs-real floor, and mode coverage of
the 8-Gaussian ring per loss variant (benchmarks/mode_collapse.py).

Demo part: trains the feature classifier on the embedded MNIST digits (`ganjax train-features`,
unless --features names a trained one), trains the README's demo (configs/dcgan_mnist.py)
evaluating its EMA generator every --eval_every steps with classifier features, then scores the
final generator and the real-vs-real floor (training digits against held-out digits) with
`ganjax eval`. Writes benchmarks/results/quality_demo_<device>.json and a PNG of the metrics over
training with the floor drawn in.

    python benchmarks/quality.py demo            # ~5 min on 2 CPU cores
    python benchmarks/quality.py ring            # = python benchmarks/mode_collapse.py
    python benchmarks/quality.py all
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
import mode_collapse  # noqa: E402
from ganjax import config as config_lib  # noqa: E402
from ganjax import evaluate, summaries  # noqa: E402
from ganjax import train as train_lib  # noqa: E402
from ganjax.metrics import features as features_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def demo(args) -> str:
    """Runs the demo part; returns the JSON path."""
    config = config_lib.load_config_file(os.path.join(ROOT, 'configs', 'dcgan_mnist.py'))
    with tempfile.TemporaryDirectory(prefix='ganjax_quality_') as tmp:
        features_dir = args.features or os.path.join(tmp, 'features')
        t0 = time.perf_counter()
        if args.features:
            _, _, info = features_lib.load_classifier(features_dir)
        else:
            info = features_lib.train_classifier(config.data, features_dir,
                                                 log=lambda m: print(f'[features] {m}'))
        classifier_seconds = time.perf_counter() - t0
        workdir = args.workdir or os.path.join(tmp, 'run')
        config.train.progress = False
        config.eval.every = args.eval_every
        config.eval.num_samples = args.num
        config.eval.features = 'classifier'
        config.eval.features_dir = features_dir
        t0 = time.perf_counter()
        train_lib.train_and_evaluate(config, workdir)
        train_seconds = time.perf_counter() - t0
        final = evaluate.evaluate(workdir, num=args.num, features_dir=features_dir)
        best = evaluate.evaluate(workdir, num=args.num, features_dir=features_dir, best=True)
        history = summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'))
        record = {
            'benchmark': 'quality_demo', 'config': 'configs/dcgan_mnist.py',
            'num_samples': final['num'], 'features': final['features'],
            'classifier': {k: info[k] for k in ('dataset', 'held_out_accuracy',
                                                'held_out_examples', 'epochs')},
            'classifier_seconds': classifier_seconds, 'train_seconds': train_seconds,
            'final': {'step': final['step'], 'generator': final['generator']},
            'best': {'metric': config.eval.best_metric, 'step': best['step'],
                     'generator': best['generator']},
            'real_vs_real': final['real_vs_real'], 'history': history,
            **common.environment()}
        path = common.write_result(record, args.out, 'quality_demo')
        summaries.plot_eval(os.path.join(workdir, 'eval', 'history.jsonl'),
                            os.path.splitext(path)[0] + '.png', floor=final['real_vs_real'])
    print(evaluate.format_table(final))
    print(f"best checkpoint by {config.eval.best_metric}: step {best['step']}, "
          f"fid {best['generator']['fid']:.2f}")
    print(f'-> {path}, {os.path.splitext(path)[0]}.png')
    return path


def main(argv=None) -> int:
    """Runs the parts asked for."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('part', choices=('demo', 'ring', 'all'))
    p.add_argument('--num', type=int, default=500, help='samples per evaluation (the embedded '
                                                        'digits hold out 500)')
    p.add_argument('--eval_every', type=int, default=500)
    p.add_argument('--features', default='', help='a trained classifier folder (default: train '
                                                  'one)')
    p.add_argument('--workdir', default='', help='keep the demo run here (default: temporary)')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    if args.part in ('demo', 'all'):
        demo(args)
    if args.part in ('ring', 'all'):
        mode_collapse.main([])
    return 0


if __name__ == '__main__':
    sys.exit(main())
