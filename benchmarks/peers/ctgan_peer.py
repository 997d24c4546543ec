"""ganjax's cscGAN beside CTGAN on the same expression table, with the same budget, in one run.

CTGAN (Xu et al. 2019, "Modeling Tabular data using Conditional GAN"; the `ctgan` package of the
SDV project, CPU torch) is what tabular-data users reach for: mode-specific normalisation of
every continuous column, a conditional vector over a discrete column, PacGAN, WGAN-GP. This
script, on the training split of the run's expression data (the embedded PBMCs by default):

1. trains ganjax with the config (default configs/cscgan_pbmc.py) for --steps steps and records
   the steady training rate (`steps_per_sec` of its log) and the wall time;
2. fits CTGAN on the same table (the same values the ganjax model sees, plus the cell type as a
   discrete column) for as many epochs as let its critic see as many real rows as ganjax's did
   (the same budget; --ctgan-epochs overrides), and times its preprocessing and its training;
3. samples both with the held-out split's cell-type composition (ganjax through its conditional
   generator, CTGAN through its conditional vector), and scores them, and a real-vs-real floor
   (training cells against the held-out ones), with ganjax's expression metrics
   (ganjax/metrics/expression.py) and SDMetrics' QualityReport (an independent implementation,
   on the --quality-genes most variable genes and the cell type: its pair trends grow with the
   square of the columns);
4. prints a table and writes benchmarks/results/ctgan_peer_<cpu>.json.

Training rows/s count the real rows each critic update reads: ganjax n_critic x batch per step,
CTGAN discriminator_steps x batch per step (batch 500 and pac 10, its defaults).

    python benchmarks/peers/ctgan_peer.py --genes 100       # full budget on 100 genes
    python benchmarks/peers/ctgan_peer.py --steps 20 --genes 10 --quality-genes 5 --out /tmp/t.json

CTGAN fits a Bayesian Gaussian mixture to every continuous column before it trains, which on the
765 genes of the embedded PBMCs takes long on a small CPU (see benchmarks/README.md); --genes
runs both on a panel of the most variable genes.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, ROOT)

import common  # noqa: E402


def _composition(labels, num_classes):
    """Class counts of a label array."""
    import numpy as np
    return np.bincount(labels[labels >= 0], minlength=num_classes)


def train_ganjax(config, workdir: str) -> dict:
    """Trains the run; returns its wall time and its logged steady rate."""
    import json

    from ganjax.train import train_and_evaluate

    start = time.perf_counter()
    train_and_evaluate(config, workdir)
    wall = time.perf_counter() - start
    rates = [json.loads(line).get('steps_per_sec') for line in
             open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8')]
    rates = [r for r in rates if r]
    # The first window holds the compile; the rest are steady.
    steady = sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else rates[0]
    return {'wall_s': wall, 'steps_per_sec': steady}


def sample_ganjax(workdir: str, labels, seed: int):
    """Samples of the run's EMA generator for the given classes, in the data's units."""
    import jax
    import numpy as np

    from ganjax import run_dir
    from ganjax.train_step import make_generate_fn, sample_latent

    _, gan, state = run_dir.load_run(workdir)
    z = sample_latent(jax.random.PRNGKey(seed), len(labels), gan.latent_dim)
    x = jax.jit(make_generate_fn(gan))(state.ema_params, state.g_state, z,
                                       np.asarray(labels, np.int32))
    return run_dir.load_scaling(workdir).to_data(np.asarray(x))


def quality(real_df, fake_df, genes, label_column) -> float:
    """SDMetrics' QualityReport score (column shapes and pair trends) on the given columns."""
    from sdmetrics.reports.single_table import QualityReport

    metadata = {'columns': {g: {'sdtype': 'numerical'} for g in genes}}
    metadata['columns'][label_column] = {'sdtype': 'categorical'}
    report = QualityReport()
    report.generate(real_df[list(genes) + [label_column]], fake_df[list(genes) + [label_column]],
                    metadata, verbose=False)
    return float(report.get_score())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=os.path.join(ROOT, 'configs', 'cscgan_pbmc.py'))
    parser.add_argument('--steps', type=int, default=3000, help='ganjax training steps')
    parser.add_argument('--ctgan-epochs', type=int, default=0,
                        help='CTGAN epochs (0 = as many real critic rows as ganjax)')
    parser.add_argument('--genes', type=int, default=0,
                        help='train both on the N most variable genes (data.num_genes; 0 = all)')
    parser.add_argument('--quality-genes', type=int, default=50)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='torch threads for CTGAN (XLA uses every core)')
    parser.add_argument('--out', default='')
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    import torch

    from ganjax import config as config_lib
    from ganjax import data
    from ganjax.metrics.expression import ExpressionMetrics

    config = config_lib.load_config_file(args.config)
    config.train.num_steps = args.steps
    config.train.log_every = max(1, min(100, args.steps // 4))
    config.train.sample_every = args.steps
    config.train.checkpoint_every = args.steps
    config.train.progress = False
    config.eval.every = 0
    config.eval.best_metric = ''
    config.seed = args.seed
    config.data.num_genes = args.genes
    config_lib.validate(config)
    train = data.build_source(config.data, 'train')
    held_out = data.build_source(config.data, 'eval')
    names = train.class_names
    label_column = 'cell_type'
    train_x = train.get_batch(np.arange(len(train)))
    real_x = held_out.get_batch(np.arange(len(held_out)))
    want = np.repeat(np.arange(len(names)), _composition(real_x['label'], len(names)))

    record = common.environment()
    record.update({'config': os.path.relpath(args.config, ROOT), 'data': train.description,
                   'held_out_cells': len(held_out), 'steps': args.steps})
    with tempfile.TemporaryDirectory() as workdir:
        g = train_ganjax(config, workdir)
        rows_per_step = config.train.n_critic * config.data.batch_size
        g['rows_per_sec'] = g['steps_per_sec'] * rows_per_step
        g['critic_rows'] = args.steps * rows_per_step
        ganjax_x = sample_ganjax(workdir, want, args.seed + 1)
    record['ganjax'] = g
    print(f'ganjax: {args.steps} steps in {g["wall_s"]:.1f} s, steady {g["steps_per_sec"]:.2f} '
          f'steps/s = {g["rows_per_sec"]:.0f} critic rows/s', flush=True)

    from ctgan import CTGAN
    from ctgan.data_transformer import DataTransformer

    torch.set_num_threads(args.threads)
    genes = list(train.genes)
    frame = pd.DataFrame(np.asarray(train_x['x']), columns=genes)
    frame[label_column] = [names[k] for k in train_x['label']]
    model = CTGAN(epochs=1, verbose=False, enable_gpu=False)
    batch, steps_per_epoch = model._batch_size, max(len(frame) // model._batch_size, 1)
    epoch_rows = steps_per_epoch * batch * model._discriminator_steps
    epochs = args.ctgan_epochs or max(1, int(np.ceil(g['critic_rows'] / epoch_rows)))
    start = time.perf_counter()
    DataTransformer().fit(frame, [label_column])
    transform_s = time.perf_counter() - start
    model = CTGAN(epochs=epochs, verbose=False, enable_gpu=False)
    model.set_random_state(args.seed)
    start = time.perf_counter()
    model.fit(frame, discrete_columns=[label_column])
    fit_s = time.perf_counter() - start
    train_s = max(fit_s - transform_s, 1e-9)
    c = {'epochs': epochs, 'critic_rows': epochs * epoch_rows, 'fit_s': fit_s,
         'transformer_fit_s': transform_s, 'rows_per_sec': epochs * epoch_rows / train_s,
         'batch_size': batch, 'pac': model.pac}
    parts = [model.sample(int(n), condition_column=label_column, condition_value=names[k])
             for k, n in enumerate(_composition(real_x['label'], len(names))) if n]
    ctgan_frame = pd.concat(parts, ignore_index=True)
    record['ctgan'] = c
    print(f'CTGAN: {epochs} epochs in {fit_s:.1f} s ({transform_s:.1f} s of it fitting its '
          f'column transformer) = {c["rows_per_sec"]:.0f} critic rows/s', flush=True)

    lookup = {n: k for k, n in enumerate(names)}
    ctgan_labels = np.array([lookup[v] for v in ctgan_frame[label_column]], np.int32)
    ctgan_x = ctgan_frame[genes].to_numpy(np.float32)
    metrics = ExpressionMetrics(held_out, args.seed)
    floor_idx = np.random.default_rng(args.seed).permutation(len(train))[:len(held_out)]
    sets = {'ganjax': (ganjax_x, want), 'ctgan': (ctgan_x, ctgan_labels),
            'real_vs_real': (np.asarray(train_x['x'])[floor_idx], train_x['label'][floor_idx])}
    top = np.argsort(-np.asarray(train_x['x']).var(0))[:args.quality_genes]
    quality_genes = [genes[j] for j in top]

    def frame_of(x, labels):
        f = pd.DataFrame(held_out.preprocessing.to_log(x), columns=genes)
        f[label_column] = [names[k] for k in labels]
        return f

    real_frame = frame_of(np.asarray(real_x['x']), real_x['label'])
    record['metrics'] = {}
    for name, (x, labels) in sets.items():
        scores = metrics(real_x['x'], real_x['label'], x, labels)
        scores['sdmetrics_quality'] = quality(real_frame, frame_of(x, labels), quality_genes,
                                              label_column)
        record['metrics'][name] = scores
    record['quality_genes'] = quality_genes
    record['speedup_rows_per_sec'] = g['rows_per_sec'] / c['rows_per_sec']

    keys = list(record['metrics']['ganjax'])
    print(f"\n{'metric':20s} {'ganjax':>10s} {'CTGAN':>10s} {'real vs real':>13s}")
    for key in keys:
        vals = [record['metrics'][n][key] for n in ('ganjax', 'ctgan', 'real_vs_real')]
        print(f'{key:20s} {vals[0]:10.4f} {vals[1]:10.4f} {vals[2]:13.4f}')
    print(f'critic rows/s: ganjax {g["rows_per_sec"]:.0f}, CTGAN {c["rows_per_sec"]:.0f} '
          f'({record["speedup_rows_per_sec"]:.1f}x)')
    path = common.write_result(record, args.out, 'ctgan_peer')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
