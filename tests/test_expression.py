"""Expression tables: readers, preprocessing, bad input, the metrics, and a conditional run end to
end (train, eval with its picture, samples written as .h5ad and .csv)."""

import json
import os

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from ganjax import data, evaluate
from ganjax.cli import main
from ganjax.data import expression
from ganjax.errors import ConfigError, DataError
from ganjax.metrics import domains
from ganjax.metrics import expression as em

from util import ROOT

GENES = tuple(f'G{j}' for j in range(6))
TYPES = ('B cell', 'T cell', 'monocyte')


def _counts(n=30, seed=0):
    """Counts [n, 6] where each of 3 types over-expresses its own two genes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    rate = np.ones((n, 6)) * 2.0
    rate[np.arange(n), 2 * labels] = 30.0
    rate[np.arange(n), 2 * labels + 1] = 15.0
    return rng.poisson(rate).astype(np.float32), labels


def _write_all(tmp_path, x, labels):
    """The same table as .h5ad (sparse, with a layer), .csv and .npz."""
    names = [TYPES[k] for k in labels]
    cells = [f'cell{i}' for i in range(len(x))]
    adata = anndata.AnnData(X=scipy.sparse.csr_matrix(x),
                            obs=pd.DataFrame({'type': pd.Categorical(names, categories=TYPES)},
                                             index=cells),
                            var=pd.DataFrame(index=list(GENES)))
    adata.layers['doubled'] = x * 2
    adata.write_h5ad(tmp_path / 't.h5ad')
    lines = ['cell,' + ','.join(GENES) + ',type']
    lines += [f'{c},' + ','.join(f'{v:g}' for v in row) + f',{t}'
              for c, row, t in zip(cells, x, names)]
    (tmp_path / 't.csv').write_text('\n'.join(lines) + '\n')
    np.savez(tmp_path / 't.npz', x=x, genes=np.array(GENES), cells=np.array(cells),
             label=np.array(names))
    return {'h5ad': str(tmp_path / 't.h5ad'), 'csv': str(tmp_path / 't.csv'),
            'npz': str(tmp_path / 't.npz')}


def test_readers_agree_and_preprocessing_inverts(tmp_path):
    x, labels = _counts()
    paths = _write_all(tmp_path, x, labels)
    read = {
        'h5ad': expression.read_expression(paths['h5ad'], label_column='type'),
        'csv': expression.read_expression(paths['csv'], label_column='type',
                                          index_column='cell'),
        'npz': expression.read_expression(paths['npz']),
    }
    for kind, expr in read.items():
        np.testing.assert_array_equal(expr.x, x, err_msg=kind)
        assert expr.genes == GENES and expr.class_names == TYPES, kind
        np.testing.assert_array_equal(expr.labels, labels, err_msg=kind)
        assert expr.cells[3] == 'cell3', kind
    layer = expression.read_expression(paths['h5ad'], layer='doubled')
    np.testing.assert_array_equal(layer.x, 2 * x)

    # Library size then log1p, by hand; the inverse gives counts normalised to the target.
    prep = expression.Preprocessing('log1p_library', 'counts', 100.0)
    y = prep.forward(x)
    hand = np.log1p(x / x.sum(1, keepdims=True) * 100.0)
    np.testing.assert_allclose(y, hand, rtol=1e-6)
    np.testing.assert_allclose(prep.inverse(y).sum(1), 100.0, rtol=1e-5)
    # A file of log1p values: normalisation works on their counts, the inverse returns log1p.
    logged = expression.Preprocessing('library', 'log1p', 100.0)
    np.testing.assert_allclose(logged.forward(np.log1p(x)), x / x.sum(1, keepdims=True) * 100,
                               rtol=1e-5)
    np.testing.assert_allclose(logged.inverse(logged.forward(np.log1p(x))),
                               np.log1p(x / x.sum(1, keepdims=True) * 100), rtol=1e-5)

    # The source: stratified split, the run's standardisation on top, domain 'expression'.
    config = _data_config(paths['h5ad'], preprocess='log1p_library', target_sum=100.0,
                          standardize=True, eval_fraction=0.2)
    train, ev = (data.build_source(config, s) for s in ('train', 'eval'))
    assert (len(train), len(ev)) == (24, 6) and train.domain == 'expression'
    np.testing.assert_array_equal(np.bincount(ev.labels), [2, 2, 2])
    assert train.scaling == ev.scaling and train.scaling.kind == 'standardized'
    z = train.scaling.to_model(train.get_batch(np.arange(24))['x'])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    # The most variable genes of the training cells, kept in the file's order.
    config.num_genes = 2
    top = data.build_source(config, 'train')
    full = np.log1p(x / x.sum(1, keepdims=True) * 100.0)[np.isin(
        np.arange(30), [int(c[4:]) for c in train.cells])]
    want = np.sort(np.argsort(-full.var(0))[:2])
    assert top.genes == tuple(GENES[j] for j in want) == data.build_source(config, 'eval').genes


def _data_config(path, **overrides):
    from ganjax import config as config_lib
    config = config_lib.default_config()
    config.data.name = 'expression'
    config.data.path = str(path)
    config.data.label_column = 'type'
    for k, v in overrides.items():
        config.data[k] = v
    return config.data


def test_bad_tables_get_one_clear_error(tmp_path):
    x, labels = _counts(12)
    paths = _write_all(tmp_path, x, labels)
    with pytest.raises(DataError, match=r"obs has no column 'cell_type'.*'type'"):
        expression.read_expression(paths['h5ad'], label_column='cell_type')
    with pytest.raises(DataError, match=r"no layer 'counts'.*doubled"):
        expression.read_expression(paths['h5ad'], layer='counts')
    with pytest.raises(DataError, match=r"no label column 'kind'"):
        expression.read_expression(paths['csv'], label_column='kind')
    bad = x.copy()
    bad[4, 2] = np.nan
    anndata.AnnData(X=bad, obs=pd.DataFrame(index=[f'c{i}' for i in range(12)]),
                    var=pd.DataFrame(index=list(GENES))).write_h5ad(tmp_path / 'nan.h5ad')
    with pytest.raises(DataError, match=r"cell 'c4' \(row 5\), gene 'G2' \(column 3\) is nan"):
        expression.read_expression(str(tmp_path / 'nan.h5ad'))
    dropped = expression.read_expression(str(tmp_path / 'nan.h5ad'), bad_rows='drop')
    assert len(dropped.x) == 11 and dropped.dropped[0][0] == "'c4' (row 5)"
    # Ragged and non-numeric rows: the line and column, or dropped and counted.
    lines = (tmp_path / 't.csv').read_text().splitlines()
    lines[3] = lines[3].rsplit(',', 1)[0]
    row = lines[5].split(',')
    row[3] = 'nan'
    lines[5] = ','.join(row)
    cells = lines[7].split(',')
    cells[2] = 'n/a'
    lines[7] = ','.join(cells)
    (tmp_path / 'bad.csv').write_text('\n'.join(lines) + '\n')
    with pytest.raises(DataError, match=r'line 4: 7 cells, expected 8'):
        expression.read_expression(str(tmp_path / 'bad.csv'), label_column='type')
    kept = expression.read_expression(str(tmp_path / 'bad.csv'), label_column='type',
                                      index_column='cell', bad_rows='drop')
    assert len(kept.x) == 12 - 3 and [d[0] for d in kept.dropped] == ['line 4', 'line 6',
                                                                        'line 8']
    assert "'n/a' is not a number" in kept.dropped[2][1]
    (tmp_path / 'empty.csv').write_text('')
    with pytest.raises(DataError, match='empty'):
        expression.read_expression(str(tmp_path / 'empty.csv'))
    (tmp_path / 'junk.h5ad').write_bytes(b'not hdf5')
    with pytest.raises(DataError, match=r'junk.h5ad.*as AnnData'):
        expression.read_expression(str(tmp_path / 'junk.h5ad'))
    with pytest.raises(ConfigError, match='unknown expression file type'):
        (tmp_path / 't.xlsx').write_bytes(b'')
        expression.read_expression(str(tmp_path / 't.xlsx'))
    # Library-size normalisation needs counts.
    with pytest.raises(DataError, match=r'negative value'):
        expression.Preprocessing('library').forward(-np.ones((2, 3)), ('a', 'b'), 'f')
    with pytest.raises(DataError, match=r"cell 'a' \(row 1\) has no counts"):
        expression.Preprocessing('library').forward(np.zeros((2, 3)), ('a', 'b'), 'f')


def test_expression_metrics_by_hand():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 5))
    fake = real[:, ::-1] * 2.0
    stats = em.gene_statistics(real, fake)
    mr, mf = real.mean(0), fake.mean(0)
    assert stats['gene_mean_corr'] == pytest.approx(np.corrcoef(mr, mf)[0, 1])
    assert stats['gene_mean_err'] == pytest.approx(np.abs(mr - mf).mean())
    assert stats['gene_var_corr'] == pytest.approx(np.corrcoef(real.var(0), fake.var(0))[0, 1])
    assert stats['zero_share_err'] == pytest.approx(
        np.abs((real <= 0).mean(0) - (fake <= 0).mean(0)).mean())
    iu = np.triu_indices(5, 1)
    assert em.correlation_distance(real, fake) == pytest.approx(
        np.abs(np.corrcoef(real.T)[iu] - np.corrcoef(fake.T)[iu]).mean())
    # Unbiased MMD^2 from its definition, with an explicit bandwidth.
    a, b, h = real[:7], fake[:5], 1.7
    k = lambda u, v: np.exp(-np.sum((u - v) ** 2) / (2 * h * h))  # noqa: E731
    kaa = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / 42
    kbb = sum(k(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / 20
    kab = sum(k(u, v) for u in a for v in b) / 35
    assert em.rbf_mmd(a, b, h) == pytest.approx(kaa + kbb - 2 * kab, rel=1e-6)
    assert em.rbf_mmd(real, real + 3.0) > 10 * abs(em.rbf_mmd(real[:30], real[30:]))
    from scipy.stats import wasserstein_distance
    assert em.wasserstein_per_gene(real, fake) == pytest.approx(
        np.mean([wasserstein_distance(real[:, g], fake[:, g]) for g in range(5)]))
    # Told apart when shifted, not when drawn alike.
    assert em.classifier_auc(real, real + 3.0) > 0.95
    assert abs(em.classifier_auc(real[:30], real[30:]) - 0.5) < 0.25
    x, labels = _counts(60)
    assert set(em.marker_genes(np.log1p(x), labels, 1, 2)) == {2, 3}


def test_conditional_run_trains_evaluates_and_writes_cells(tmp_path, capsys):
    """A tiny cscGAN-style run on a 3-type table: its evaluation has the per-type metrics and a
    PCA picture, and samples of one type come back as .h5ad / .csv with the genes and type, in
    counts that sum to the target (the library-size output layer, inverted)."""
    x, labels = _counts(60)
    paths = _write_all(tmp_path, x, labels)
    workdir = tmp_path / 'run'
    args = ['--config.data.name=expression', f'--config.data.path={paths["h5ad"]}',
            '--config.data.label_column=type', '--config.data.preprocess=library',
            '--config.data.target_sum=100', '--config.data.eval_fraction=0.5',
            '--config.data.batch_size=4', '--config.model.g_widths=16,32',
            '--config.model.d_widths=32,16', '--config.model.latent_dim=8',
            '--config.model.g_residual=true', '--config.model.library_size=100',
            '--config.train.num_steps=6', '--config.eval.every=3', '--config.eval.num_samples=30',
            '--config.train.sample_every=6', '--config.train.progress=false',
            '--config.parallel.num_devices=1']

    def ganjax(*argv):
        capsys.readouterr()
        assert main(list(argv)) == 0, capsys.readouterr().err[-3000:]
        return capsys.readouterr().out

    ganjax('train', '--config', os.path.join(ROOT, 'configs', 'cscgan_pbmc.py'), '--workdir',
           str(workdir), *args)
    history = [json.loads(line) for line in open(workdir / 'eval' / 'history.jsonl')]
    assert [h['step'] for h in history] == [3, 6]
    for key in em._GENERAL + em._CONDITIONAL:
        assert key in history[-1], key
    out = ganjax('eval', '--workdir', str(workdir), '--num', '30')
    assert 'tstr_acc' in out and 'marker_overlap' in out
    result = json.load(open(workdir / 'eval' / 'step_0000006.json'))
    assert os.path.getsize(result['figure']) > 10_000
    assert set(result['per_type']) == set(TYPES)
    # train.fake_labels='data': the evaluated samples have the held-out cells' types.
    assert all(r['generated_cells'] == r['real_cells'] for r in result['per_type'].values())
    assert result['per_type']['T cell']['real_markers'] == ['G2']
    # Real vs real: the same metrics, and a classifier barely beats chance on them.
    assert set(result['real_vs_real']) == set(result['generator'])

    ganjax('sample', '--workdir', str(workdir), '--num', '12', '--class', 'T cell', '--out',
           str(tmp_path / 'tcells.h5ad'))
    cells = anndata.read_h5ad(tmp_path / 'tcells.h5ad')
    assert cells.shape == (12, 6) and tuple(cells.var_names) == GENES
    assert list(cells.obs['type']) == ['T cell'] * 12
    np.testing.assert_allclose(cells.X.sum(1), 100.0, rtol=1e-4)
    assert json.loads(cells.uns['ganjax']['preprocessing'])['kind'] == 'library'
    ganjax('sample', '--workdir', str(workdir), '--num', '4', '--out', str(tmp_path / 'c.csv'))
    table = pd.read_csv(tmp_path / 'c.csv')
    assert list(table.columns) == list(GENES) + ['type']
    assert list(table['type']) == [TYPES[i % 3] for i in range(4)]
    np.testing.assert_allclose(table[list(GENES)].to_numpy().sum(1), 100.0, rtol=1e-4)


def test_embedded_pbmcs_and_the_domain_table():
    from ganjax import config as config_lib
    config = config_lib.default_config()
    config.data.name = 'pbmc68k_reduced'
    train = data.build_source(config.data, 'train')
    assert train.data_shape == (765,) and train.num_classes == 10
    assert 'CD14+ Monocyte' in train.class_names and train.genes[0] == 'HES4'
    assert train.preprocessing.values == 'log1p'
    # Domain metric names have directions, so any of them can choose the best checkpoint.
    metrics = domains.domain_metrics(train, config)
    assert set(metrics.names(10)) <= set(evaluate.METRIC_GOALS)
