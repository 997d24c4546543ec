"""'expression' and 'pbmc68k_reduced': gene-expression tables, one cell (or sample) per row.

Files (data.path), by extension:
  .h5ad                AnnData, the format every single-cell tool writes (read with `anndata`):
                       X, raw.X (data.layer='raw') or a layer; dense or sparse; labels from a
                       column of `obs` (data.label_column, e.g. a cell type).
  .csv / .tsv (.gz)    a header of gene names, an optional label column (data.label_column) and an
                       optional index column of cell names (data.index_column).
  .npz                 'x' [cells, genes]; optional 'genes', 'cells', and 'label' (int, -1 =
                       unlabelled) with 'class_names', or 'label' as strings.

'pbmc68k_reduced' is the embedded default: 700 peripheral blood mononuclear cells x 765 genes of
10x Genomics' 68k PBMC data set (the one scGAN was trained on), as scanpy ships it
(embedded/pbmc68k_reduced.h5ad, see embedded/README.md): log-normalised values (`raw.X`) and ten
annotated cell types (`obs['bulk_labels']`).

Preprocessing (data.preprocess), applied once when the table is read and recorded with the run:
  none            the values as stored.
  library         library-size normalisation: each cell scaled to data.target_sum counts
                  (scGAN's input, for its library-size output layer).
  log1p_library   library-size normalisation then log(1 + x) (the usual scanpy preprocessing).
data.values says what the file holds ('counts', or 'log1p' values whose expm1 are counts; 'auto'
is 'log1p' for the embedded PBMCs' raw.X and 'counts' otherwise) so that the normalisation works
on counts. data.num_genes keeps that many genes of highest variance on the training split (highly
variable genes; 0 = all), and the library-size normalisation then counts those genes only. On
top, data.standardize makes the model see each gene as
z-scores (a `Scaling`, inverted exactly). Samples are written back (`ganjax sample --out
cells.h5ad|cells.csv`) in the file's own units: the log and the standardisation are inverted; the
per-cell library size is not recoverable, so written counts are normalised to data.target_sum.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
from typing import Any

import numpy as np

from ganjax.data import source as source_lib
from ganjax.data import tabular
from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, DataError

PBMC68K_PATH = pathlib.Path(__file__).resolve().parent / 'embedded' / 'pbmc68k_reduced.h5ad'
PREPROCESS = ('none', 'library', 'log1p_library')
VALUES = ('auto', 'counts', 'log1p')
BAD_ROWS = ('error', 'drop')
EXTENSIONS = ('.h5ad', '.csv', '.tsv', '.txt', '.csv.gz', '.tsv.gz', '.npz')


# eq=False: compared and hashed by identity (the arrays are not hashable), so that a read
# table can key the cache of its preprocessed values.
@dataclasses.dataclass(frozen=True, eq=False)
class Expression:
    """An expression table as read from a file.

    Attributes:
        x: values float32 [cells, genes], as stored (before preprocessing).
        labels: int32 [cells], -1 for unlabelled cells (or every cell without a label column).
        genes: the gene (column) names.
        cells: the cell (row) names ('' each when the file has none).
        class_names: names of the label classes ('' without labels).
        dropped: (cell, reason) of each row left out (data.bad_rows='drop').
        path: where it came from.
    """

    x: np.ndarray
    labels: np.ndarray
    genes: tuple[str, ...]
    cells: tuple[str, ...]
    class_names: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]
    path: str

    @property
    def num_classes(self) -> int:
        """Number of label classes (0 = unlabelled)."""
        return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The map from stored values to the values the source returns, and back.

    Attributes:
        kind: one of PREPROCESS.
        values: 'counts' or 'log1p': what the file holds.
        target_sum: the counts per cell after library-size normalisation.
    """

    kind: str = 'none'
    values: str = 'counts'
    target_sum: float = 1e4

    def forward(self, x: np.ndarray, cells: tuple[str, ...] = (), where: str = '') -> np.ndarray:
        """Stored values [cells, genes] -> preprocessed float32 values.

        Raises:
            DataError: for negative counts, or a cell without counts (naming the cell).
        """
        if self.kind == 'none':
            return np.asarray(x, np.float32)
        counts = np.expm1(np.asarray(x, np.float64)) if self.values == 'log1p' else (
            np.asarray(x, np.float64))
        negative = np.argwhere(counts < 0)
        if len(negative):
            r, g = negative[0]
            raise DataError(f'{where}: cell {_cell_name(cells, r)} has a negative value at gene '
                            f'column {g + 1}; library-size normalisation needs counts (or set '
                            f'data.values to what the file holds, or data.preprocess=none)')
        totals = counts.sum(axis=1, keepdims=True)
        empty = np.flatnonzero(totals[:, 0] <= 0)
        if len(empty):
            raise DataError(f'{where}: cell {_cell_name(cells, empty[0])} has no counts, so it '
                            f'cannot be library-size normalised ({len(empty)} such cells; '
                            f'data.bad_rows=drop leaves them out)')
        counts = counts * (self.target_sum / totals)
        return (np.log1p(counts) if self.kind == 'log1p_library' else counts).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Preprocessed values -> the file's units (normalised counts, or their log1p)."""
        y = np.asarray(y, np.float64)
        if self.kind == 'none':
            return y.astype(np.float32)
        counts = np.expm1(y) if self.kind == 'log1p_library' else y
        return (np.log1p(np.maximum(counts, 0.0)) if self.values == 'log1p' else counts).astype(
            np.float32)

    def to_log(self, y: np.ndarray) -> np.ndarray:
        """Preprocessed values -> log-normalised expression, where metrics compare cells.

        Counts ('library') get log1p; log-normalised values and values left as they are
        ('none': the user's own units) are used as they are.
        """
        y = np.asarray(y, np.float32)
        return np.log1p(np.maximum(y, 0.0)) if self.kind == 'library' else y

    def to_json(self) -> dict[str, Any]:
        """A JSON record (stored in the samples the writers produce)."""
        return dataclasses.asdict(self)


def _cell_name(cells: tuple[str, ...], row: int) -> str:
    name = cells[row] if row < len(cells) and cells[row] else ''
    return f'{name!r} (row {row + 1})' if name else f'row {row + 1}'


def _labels_from(values: Any, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices and names of a column of labels (categories keep their order; other values
    are numbered in sorted order; missing values are -1)."""
    import pandas as pd  # noqa: PLC0415 (anndata's dependency; only the table readers need it)

    series = pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        names = tuple(str(c) for c in series.cat.categories)
        codes = series.cat.codes.to_numpy().astype(np.int32)
        return codes, names
    missing = series.isna().to_numpy()
    text = series.astype(str).to_numpy()
    names = tuple(sorted(set(text[~missing].tolist())))
    if not names:
        raise DataError(f'{what}: the label column holds no labels')
    lookup = {n: k for k, n in enumerate(names)}
    return np.array([-1 if m else lookup[t] for t, m in zip(text, missing)], np.int32), names


def read_h5ad(path: str, layer: str = '', label_column: str = '') -> Expression:
    """Reads an AnnData `.h5ad` file.

    Args:
        path: the file.
        layer: '' for X, 'raw' for raw.X (with raw's genes), else a key of `layers`.
        label_column: a column of `obs` holding each cell's class ('' = unlabelled).

    Returns:
        An `Expression` (sparse matrices made dense, float32).

    Raises:
        DataError: for a file that is not AnnData, a missing layer or label column (listing the
            ones there are).
    """
    try:
        import anndata  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - a dependency of ganjax
        raise ConfigError(f'reading {path} needs the anndata package: pip install anndata') from e
    import warnings  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            # Files from older anndata versions (scanpy's own) say so on read, and move neighbour
            # graphs; neither concerns the expression matrix read here.
            warnings.simplefilter('ignore', FutureWarning)
            warnings.filterwarnings('ignore', category=getattr(
                getattr(anndata, '_warnings', None), 'OldFormatWarning', UserWarning))
            adata = anndata.read_h5ad(path)
    except Exception as e:  # noqa: BLE001 - h5py and anndata raise many kinds for a bad file
        raise DataError(f'cannot read {path!r} as AnnData (.h5ad): {type(e).__name__}: {e}') from e
    if layer == 'raw':
        if adata.raw is None:
            raise DataError(f'{path}: data.layer=raw, but the file has no raw matrix')
        matrix, genes = adata.raw.X, adata.raw.var_names
    elif layer:
        if layer not in adata.layers:
            raise DataError(f'{path}: no layer {layer!r}; it has '
                            f'{sorted(adata.layers.keys()) or "none"} (or use data.layer="" for '
                            f'X, "raw" for raw.X)')
        matrix, genes = adata.layers[layer], adata.var_names
    else:
        matrix, genes = adata.X, adata.var_names
    if matrix is None:
        raise DataError(f'{path}: the file holds no expression matrix (X is empty)')
    x = matrix.toarray() if hasattr(matrix, 'toarray') else np.asarray(matrix)
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f'{path}: the expression matrix has dtype {x.dtype}, not numbers')
    cells = tuple(str(c) for c in adata.obs_names)
    if label_column:
        if label_column not in adata.obs.columns:
            raise DataError(f'{path}: obs has no column {label_column!r} for data.label_column; '
                            f'it has {list(adata.obs.columns)}')
        labels, names = _labels_from(adata.obs[label_column], f'{path} obs[{label_column!r}]')
    else:
        labels, names = np.full(len(cells), -1, np.int32), ()
    return Expression(np.asarray(x, np.float32), labels, tuple(str(g) for g in genes), cells,
                      names, (), path)


def read_text_table(path: str, label_column: str = '', index_column: str = '',
                    bad_rows: str = 'error') -> Expression:
    """Reads a CSV / TSV table with a header of gene names (see `tabular.load_table`).

    Args:
        path: the file.
        label_column: the column of class labels ('' = none).
        index_column: the column of cell names ('' = none).
        bad_rows: 'error' or 'drop' (rows with bad cells or the wrong cell count).

    Returns:
        An `Expression`.
    """
    table = tabular.load_table(path, label_column, index_column, bad_rows)
    dropped = tuple((f'line {line}', reason) for line, reason in table.dropped)
    cells = table.row_names or tuple('' for _ in range(len(table.x)))
    return Expression(table.x, table.labels, table.columns, cells, table.class_names, dropped,
                      path)


def read_npz(path: str) -> Expression:
    """Reads an `.npz` table: 'x' [cells, genes] and optional 'genes', 'cells', 'label',
    'class_names'.

    Raises:
        DataError: for a file without 'x', a non-2D 'x', or names that do not fit its shape.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f'cannot read {path!r} as .npz: {e}') from e
    if 'x' not in arrays:
        raise DataError(f'{path}: an expression .npz needs an array "x" [cells, genes]; it has '
                        f'{sorted(arrays)}')
    x = arrays['x']
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f'{path}: "x" must be a 2D numeric array [cells, genes], got '
                        f'{x.dtype} {x.shape}')
    n, g = x.shape
    genes = tuple(str(v) for v in arrays.get('genes', [f'gene {j + 1}' for j in range(g)]))
    cells = tuple(str(v) for v in arrays.get('cells', ['' for _ in range(n)]))
    if len(genes) != g or len(cells) != n:
        raise DataError(f'{path}: {len(genes)} gene names and {len(cells)} cell names for "x" of '
                        f'shape {x.shape}')
    names: tuple[str, ...] = ()
    labels = np.full(n, -1, np.int32)
    if 'label' in arrays:
        raw = arrays['label']
        if len(raw) != n:
            raise DataError(f'{path}: {len(raw)} labels for {n} cells')
        if np.issubdtype(raw.dtype, np.integer):
            labels = raw.astype(np.int32)
            k = int(labels.max()) + 1 if labels.max() >= 0 else 0
            names = tuple(str(v) for v in arrays.get('class_names', [str(i) for i in range(k)]))
            if labels.min() < -1 or labels.max() >= max(len(names), 1) and k:
                raise DataError(f'{path}: labels must be -1 (unlabelled) or 0..{len(names) - 1} '
                                f'(one per class name); found {labels.min()}..{labels.max()}')
        else:
            labels, names = _labels_from(raw.astype(str), f'{path} "label"')
    return Expression(x.astype(np.float32), labels, genes, cells, names, (), path)


def check_values(expr: Expression, bad_rows: str = 'error') -> Expression:
    """Checks that every value is finite; drops the cells that are not (bad_rows='drop').

    Args:
        expr: the table.
        bad_rows: 'error' or 'drop'.

    Returns:
        The table (with `dropped` extended when rows were dropped).

    Raises:
        DataError: for an empty table, or (bad_rows='error') a NaN or infinite value, naming
            the cell and the gene.
    """
    if expr.x.shape[0] == 0 or expr.x.shape[1] == 0:
        raise DataError(f'{expr.path}: the expression table is empty ({expr.x.shape[0]} cells x '
                        f'{expr.x.shape[1]} genes)')
    bad = ~np.isfinite(expr.x)
    if not bad.any():
        return expr
    rows = np.flatnonzero(bad.any(axis=1))
    if bad_rows != 'drop':
        r = rows[0]
        g = int(np.flatnonzero(bad[r])[0])
        value = expr.x[r, g]
        raise DataError(f'{expr.path}: cell {_cell_name(expr.cells, r)}, gene {expr.genes[g]!r} '
                        f'(column {g + 1}) is {value}; all values must be finite ({len(rows)} '
                        f'cells have such values; data.bad_rows=drop leaves them out)')
    keep = np.setdiff1d(np.arange(len(expr.x)), rows)
    if not len(keep):
        raise DataError(f'{expr.path}: every cell has a NaN or infinite value')
    reasons = tuple((_cell_name(expr.cells, r), 'NaN or infinite value') for r in rows)
    return dataclasses.replace(expr, x=expr.x[keep], labels=expr.labels[keep],
                               cells=tuple(expr.cells[i] for i in keep),
                               dropped=expr.dropped + reasons)


def read_expression(path: str, layer: str = '', label_column: str = '', index_column: str = '',
                    bad_rows: str = 'error') -> Expression:
    """Reads any supported expression file (by extension) and checks its values.

    Args:
        path: .h5ad, .csv/.tsv/.txt (optionally .gz) or .npz.
        layer: for .h5ad: '' (X), 'raw' or a layer name.
        label_column: obs column (.h5ad) or table column holding the labels ('' = none).
        index_column: table column of cell names ('' = none).
        bad_rows: 'error' or 'drop'.

    Returns:
        An `Expression`.

    Raises:
        ConfigError: for a missing path or an unknown extension.
        DataError: for a missing, corrupt or bad file (naming the cell and gene).
    """
    if not path:
        raise ConfigError("data.name='expression' needs data.path: a .h5ad, .csv, .tsv or .npz "
                          'file')
    if not os.path.isfile(path):
        raise DataError(f'expression file {path!r} does not exist')
    lower = path.lower()
    if lower.endswith('.h5ad'):
        expr = read_h5ad(path, layer, label_column)
    elif lower.endswith('.npz'):
        expr = read_npz(path)
    elif lower.endswith(('.csv', '.tsv', '.txt', '.csv.gz', '.tsv.gz', '.txt.gz')):
        expr = read_text_table(path, label_column, index_column, bad_rows)
    else:
        raise ConfigError(f'data.path={path!r}: unknown expression file type; use one of '
                          f'{", ".join(EXTENSIONS)}')
    if layer and not lower.endswith('.h5ad'):
        raise ConfigError(f'data.layer={layer!r} applies to .h5ad files only, not {path!r}')
    return check_values(expr, bad_rows)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int, layer: str, label_column: str,
            index_column: str, bad_rows: str, preprocessing: Preprocessing) -> Expression:
    """Reads a file once per (path, version, options): train and eval share it."""
    del mtime_ns, size  # Only part of the cache key.
    expr = read_expression(path, layer, label_column, index_column, bad_rows)
    if preprocessing.kind != 'none' and bad_rows == 'drop':
        counts = np.expm1(expr.x) if preprocessing.values == 'log1p' else expr.x
        empty = np.flatnonzero(counts.sum(axis=1) <= 0)
        if len(empty):
            keep = np.setdiff1d(np.arange(len(expr.x)), empty)
            expr = dataclasses.replace(
                expr, x=expr.x[keep], labels=expr.labels[keep],
                cells=tuple(expr.cells[i] for i in keep),
                dropped=expr.dropped + tuple((_cell_name(expr.cells, r), 'no counts')
                                             for r in empty))
    expr.x.flags.writeable = False
    expr.labels.flags.writeable = False
    return expr


@functools.lru_cache(maxsize=4)
def _preprocessed(expr: Expression, preprocessing: Preprocessing,
                  genes: tuple[int, ...] | None = None) -> np.ndarray:
    """The preprocessed values of a table (of some genes), once per table and options."""
    x = expr.x if genes is None else expr.x[:, list(genes)]
    out = preprocessing.forward(x, expr.cells, expr.path)
    out.flags.writeable = False
    return out


def options(config: Any) -> dict[str, Any]:
    """Reads and validates the expression options of a data config."""
    get = functools.partial(source_lib.config_value, config)
    out = {
        'layer': str(get('layer', '')), 'label_column': str(get('label_column', '')),
        'index_column': str(get('index_column', '')), 'bad_rows': get('bad_rows', 'error'),
        'preprocess': get('preprocess', 'none'), 'values': get('values', 'counts'),
        'target_sum': get('target_sum', 1e4), 'num_genes': get('num_genes', 0),
    }
    for key, choices in (('bad_rows', BAD_ROWS), ('preprocess', PREPROCESS),
                         ('values', VALUES)):
        if out[key] not in choices:
            raise ConfigError(f'data.{key}={out[key]!r} is not one of {list(choices)}')
    genes = out['num_genes']
    if isinstance(genes, bool) or not isinstance(genes, int) or genes < 0:
        raise ConfigError(f'data.num_genes must be an integer >= 0 (0 = every gene), got '
                          f'{genes!r}')
    target = out['target_sum']
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
        raise ConfigError(f'data.target_sum must be a positive number, got {target!r}')
    return out


class ExpressionSource(source_lib.ArraySource):
    """An `ArraySource` of expression profiles.

    Attributes:
        genes: the gene names, in the order of the vector entries.
        cells: the cell names of this split ('' where the file has none).
        preprocessing: the `Preprocessing` applied to the stored values.
        dropped: (cell, reason) of the rows left out by data.bad_rows='drop' (whole file).
        label_column: the column the labels came from ('' = none).
        domain: 'expression' (evaluations add `ganjax.metrics.expression`'s metrics).
    """

    domain = 'expression'

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, genes: tuple[str, ...],
                 cells: tuple[str, ...], preprocessing: Preprocessing,
                 dropped: tuple[tuple[str, str], ...], label_column: str = '',
                 **kwargs: Any):
        """Args: as `ArraySource`, plus the genes, cells, preprocessing, dropped rows and the
        label column's name."""
        super().__init__(x, labels, **kwargs)
        self.label_column = label_column
        self.genes = tuple(genes)
        self.columns = self.genes
        self.cells = tuple(cells)
        self.preprocessing = preprocessing
        self.dropped = tuple(dropped)
        if self.dropped:
            self.description += f'; {len(self.dropped)} bad rows of the file left out'


def _build(config: Any, split: str, path: str, defaults: dict[str, Any],
           name: str) -> ExpressionSource:
    source_lib.check_split(split)
    eval_fraction, seed = source_lib.holdout_options(config)
    opts = options(config)
    for key, value in defaults.items():
        if opts[key] in ('', 'auto'):
            opts[key] = value
    if opts['values'] == 'auto':
        opts['values'] = 'counts'
    standardize = tabular.standardize_option(config)
    prep = Preprocessing(opts['preprocess'], opts['values'], float(opts['target_sum']))
    try:
        stat = os.stat(path) if path else None
    except OSError:
        stat = None
    args = (opts['layer'], opts['label_column'], opts['index_column'], opts['bad_rows'], prep)
    if stat is None:
        expr = read_expression(path, *args[:4])  # Raises the right error.
        raise DataError(f'cannot read {path!r}')  # pragma: no cover
    expr = _cached(path, stat.st_mtime_ns, stat.st_size, *args)
    stratify = expr.labels if expr.num_classes else None
    idx = source_lib.holdout_indices(len(expr.x), eval_fraction, seed, split, labels=stratify,
                                     what=name)
    train_idx = idx if split == 'train' else source_lib.holdout_indices(
        len(expr.x), eval_fraction, seed, 'train', labels=stratify, what=name)
    x, genes = _preprocessed(expr, prep), expr.genes
    if opts['num_genes']:
        keep = variable_genes(x[train_idx], opts['num_genes'], name)
        genes = tuple(genes[j] for j in keep)
        # Library sizes are those of the kept genes, so that each cell sums to target_sum (what
        # a library-size output layer produces).
        x = (_preprocessed(expr, prep, tuple(int(j) for j in keep)) if prep.kind != 'none'
             else x[:, keep])
    if standardize:
        train_x = x[train_idx].astype(np.float64)
        scaling = Scaling.standardized(train_x.mean(axis=0), train_x.std(axis=0))
    else:
        scaling = Scaling.identity(np.float32)
    return ExpressionSource(x[idx], expr.labels[idx], genes=genes,
                            cells=tuple(expr.cells[i] for i in idx), preprocessing=prep,
                            dropped=expr.dropped, num_classes=expr.num_classes,
                            label_column=opts['label_column'],
                            name=f'{name} {split} ({len(genes)} genes)',
                            class_names=expr.class_names, scaling=scaling)


def variable_genes(x: np.ndarray, count: int, what: str) -> np.ndarray:
    """The `count` genes of highest variance (of the preprocessed values), in the file's order.

    Computed on the training split only, so that held-out cells do not choose the genes.

    Args:
        x: preprocessed training values [cells, genes].
        count: genes to keep (data.num_genes).
        what: the data set, for the error.

    Returns:
        Sorted gene indices.
    """
    if count > x.shape[1]:
        raise ConfigError(f'data.num_genes={count} exceeds the {x.shape[1]} genes of {what}')
    order = np.argsort(-x.astype(np.float64).var(axis=0), kind='stable')
    return np.sort(order[:count])


def build_expression(config: Any, split: str) -> ExpressionSource:
    """Builds the 'expression' source from data.path (.h5ad, .csv, .tsv or .npz).

    A seeded hold-out of data.eval_fraction (stratified by label when there are labels) gives
    the eval split; data.standardize statistics come from the training split.

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        An `ExpressionSource` of float32 profiles [genes].
    """
    path = str(source_lib.config_value(config, 'path', ''))
    return _build(config, split, path, {}, f'expression {os.path.basename(path)}')


def build_pbmc68k(config: Any, split: str) -> ExpressionSource:
    """Builds 'pbmc68k_reduced', the embedded 700 PBMCs x 765 genes (see the module docstring).

    Reads the log-normalised `raw.X` with the cell types of `obs['bulk_labels']` unless
    data.layer / data.label_column say otherwise (data.values is then 'log1p' for raw.X).

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        An `ExpressionSource`.
    """
    layer = source_lib.config_value(config, 'layer', '') or 'raw'
    defaults = {'layer': layer, 'label_column': 'bulk_labels'}
    if layer == 'raw':
        defaults['values'] = 'log1p'
    return _build(config, split, str(PBMC68K_PATH), defaults, 'pbmc68k_reduced')


def _table_for_writing(x: np.ndarray, config: Any, what: str):
    """The run's held-out source (gene names, preprocessing) and x in the file's units."""
    from ganjax import data  # noqa: PLC0415 (the package imports this module)

    if x.ndim != 2:
        raise ConfigError(f'{what} holds tables of vectors; the run\'s samples have shape '
                          f'{x.shape[1:]}')
    source = data.build_source(config.data, 'eval')
    columns = tuple(getattr(source, 'columns', ()) or
                    (f'x{j + 1}' for j in range(x.shape[1])))
    prep = getattr(source, 'preprocessing', None)
    values = x if prep is None else prep.inverse(x)
    return source, columns, prep, values


def _atomic(out: str, write) -> None:
    tmp = f'{out}.tmp{os.getpid()}'
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _label_strings(labels, class_names) -> list[str] | None:
    if labels is None:
        return None
    return [class_names[k] if 0 <= k < len(class_names) else str(k) for k in labels.tolist()]


def write_h5ad(out: str, x: np.ndarray, labels, class_names, config: Any, seed: int) -> str:
    """`ganjax sample --out cells.h5ad`: the samples as AnnData, with the run's genes.

    X holds the file's units (the preprocessing inverted; see the module docstring); obs has the
    cell type each sample was generated for (under the run's label column, or 'label');
    uns['ganjax'] records the preprocessing and the sampling seed.

    Returns:
        One line for the log.
    """
    import anndata  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    source, genes, prep, values = _table_for_writing(x, config, '--out .h5ad')
    obs = pd.DataFrame(index=[f'generated_{i}' for i in range(len(values))])
    column = getattr(source, 'label_column', '') or 'label'
    names = _label_strings(labels, class_names)
    if names is not None:
        obs[column] = pd.Categorical(names, categories=list(class_names))
    adata = anndata.AnnData(X=values.astype(np.float32), obs=obs,
                            var=pd.DataFrame(index=list(genes)))
    adata.uns['ganjax'] = {'preprocessing': json.dumps(prep.to_json() if prep else {}),
                           'seed': int(seed),
                           'note': 'generated by ganjax; counts are normalised to the run\'s '
                                   'target_sum when the run library-size normalised them'}
    _atomic(out, lambda tmp: adata.write_h5ad(tmp))
    return f'AnnData with {values.shape[1]} genes' + (f', obs[{column!r}] = cell type'
                                                      if names is not None else '')


def write_csv(out: str, x: np.ndarray, labels, class_names, config: Any, seed: int) -> str:
    """`ganjax sample --out cells.csv`: one row per sample, a header of the run's column (gene)
    names, in the file's units, and the class as a last column for a conditional run.

    Returns:
        One line for the log.
    """
    import csv  # noqa: PLC0415

    del seed
    source, columns, _, values = _table_for_writing(x, config, '--out .csv')
    names = _label_strings(labels, class_names)
    label_column = getattr(source, 'label_column', '') or 'label'

    def write(tmp):
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            w = csv.writer(f)
            w.writerow(list(columns) + ([label_column] if names is not None else []))
            for i, row in enumerate(values):
                cells = [f'{v:.6g}' for v in row.tolist()]
                w.writerow(cells + ([names[i]] if names is not None else []))
    _atomic(out, write)
    return f'CSV of {values.shape[1]} columns' + (f' and {label_column!r}'
                                                  if names is not None else '')
