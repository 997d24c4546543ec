"""'csv': a numeric table (gene-expression style), one example per row.

Values are returned exactly as stored (float32). By default the model sees them as they are
(identity scaling): the right normalization (log1p of counts, z-scores per gene, ...) depends on
the data, so it belongs to whoever writes the file. With data.standardize the source declares a
per-column standardization (mean 0, std 1, statistics of the training split) as its `Scaling`:
the stored values stay untouched, the model sees z-scores, and samples are written back in the
table's own units.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import io
import math
import os
from typing import Any

import numpy as np

from ganjax.data import source as source_lib
from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, DataError

LABEL_COLUMN = 'label'


@dataclasses.dataclass(frozen=True)
class Table:
    """A parsed numeric table.

    Attributes:
        x: feature values, float32 [N, D].
        labels: int32 [N] (-1 everywhere when the table has no label column).
        columns: names of the D feature columns (from the header, else 'column 1', ...).
        class_names: names of the classes when the label column holds text, else ().
        num_classes: number of classes (0 without a label column).
        row_names: the index column's values, one per row ('' without an index column).
        dropped: (line, reason) of each row left out (`bad_rows='drop'`).
    """

    x: np.ndarray
    labels: np.ndarray
    columns: tuple[str, ...]
    class_names: tuple[str, ...]
    num_classes: int
    row_names: tuple[str, ...] = ()
    dropped: tuple[tuple[int, str], ...] = ()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text(path: str) -> str:
    if not path:
        raise ConfigError("data.name='csv' needs data.path, the path of a .csv file")
    if not os.path.exists(path):
        raise DataError(f'csv file {path!r} does not exist')
    if not os.path.isfile(path):
        raise DataError(f'csv path {path!r} is not a file')
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                raw = f.read()
        else:
            with open(path, 'rb') as f:
                raw = f.read()
        return raw.decode('utf-8-sig')
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f'cannot read csv file {path!r}: {e}') from e


def _rows(text: str, path: str) -> list[tuple[int, list[str]]]:
    """Splits text into (line number, cells), skipping blank lines."""
    first = next((line for line in text.splitlines() if line.strip()), '')
    delimiter = ','
    for candidate in ('\t', ';'):
        if candidate in first and ',' not in first:
            delimiter = candidate
    if '"' not in text:
        # Plain str.split is ~3x faster than the csv module and enough without quoting.
        return [(n, line.split(delimiter)) for n, line in enumerate(text.splitlines(), 1)
                if line.strip()]
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as e:
        raise DataError(f'csv file {path!r} is malformed: {e}') from e


def _cell_error(path: str, line: int, col: int, name: str, cell: str) -> DataError:
    where = f'csv file {path!r}, line {line}, column {col + 1} ({name!r})'
    text = cell.strip()
    if not text:
        return DataError(f'{where}: empty cell; fill in or drop missing values')
    if _is_number(text):
        kind = 'NaN' if math.isnan(float(text)) else 'infinite (or beyond float32 range)'
        return DataError(f'{where}: value {text!r} is {kind}; all values must be finite')
    return DataError(f'{where}: {text!r} is not a number')


def load_table(path: str, label_column: str = LABEL_COLUMN, index_column: str = '',
               bad_rows: str = 'error') -> Table:
    """Reads a numeric csv (or tsv, or ';'-separated) file.

    The first non-blank line is a header when any of its non-empty cells is not a number. The
    column named `label_column` (any case) holds the labels: integers (>= -1, -1 = unlabeled) or
    class names, which are numbered in sorted order. The column named `index_column` holds row
    names (cell barcodes, sample ids) and is not a feature. Every other cell must be a finite
    number.

    Args:
        path: the file; '.gz' files are decompressed.
        label_column: name of the label column; a missing 'label' column means no labels, any
            other missing name is an error.
        index_column: name of the row-name column ('' = none).
        bad_rows: 'error' (the first bad row is an error naming its line and column) or 'drop'
            (rows with a missing, non-numeric, NaN or infinite cell, or the wrong cell count,
            are left out and listed in `Table.dropped`).

    Returns:
        A `Table`.

    Raises:
        DataError: for a missing or empty file, ragged rows, or a cell that is empty, NaN,
            infinite or not a number (naming the file, line and column), or when every row
            is dropped.
    """
    text = _read_text(path)
    rows = _rows(text, path)
    if not rows:
        raise DataError(f'csv file {path!r} is empty')
    first_line, first = rows[0]
    has_header = any(c.strip() and not _is_number(c) for c in first)
    ncols = len(first)
    if has_header:
        names = [c.strip() for c in first]
        rows = rows[1:]
    else:
        names = [f'column {j + 1}' for j in range(ncols)]
    if not rows:
        raise DataError(f'csv file {path!r} has a header (line {first_line}) but no data rows')
    label_col = _named_column(path, names, label_column, 'label', required=(
        label_column.lower() != LABEL_COLUMN))
    index_col = _named_column(path, names, index_column, 'index', required=bool(index_column))
    skip = {label_col, index_col} - {None}
    feature_cols = [j for j in range(ncols) if j not in skip]
    if not feature_cols:
        raise DataError(f'csv file {path!r} has no feature columns besides {sorted(skip)}')
    dropped: list[tuple[int, str]] = []
    good = []
    for line, row in rows:
        if len(row) != ncols:
            problem = f'{len(row)} cells, expected {ncols} like line {first_line}'
            if bad_rows != 'drop':
                raise DataError(f'csv file {path!r}, line {line}: {problem}')
            dropped.append((line, problem))
        else:
            good.append((line, row))
    rows = good

    features = [[row[j] for j in feature_cols] for _, row in rows]
    x = _numbers(path, rows, features, feature_cols, names, bad_rows, dropped)
    if x is None:
        keep = [r for r, (line, _) in enumerate(rows) if line not in {d[0] for d in dropped}]
        rows = [rows[r] for r in keep]
        features = [features[r] for r in keep]
        x = _numbers(path, rows, features, feature_cols, names, 'error', dropped)
    if not rows:
        raise DataError(f'csv file {path!r}: every data row was dropped as bad ({len(dropped)}; '
                        f'first: line {dropped[0][0]}, {dropped[0][1]})')

    if label_col is None:
        labels = np.full(len(rows), -1, np.int32)
        class_names: tuple[str, ...] = ()
        num_classes = 0
    else:
        labels, class_names, num_classes = _parse_labels(path, rows, label_col, names[label_col])
    columns = tuple(names[j] for j in feature_cols)
    row_names = tuple(row[index_col].strip() for _, row in rows) if index_col is not None else ()
    return Table(x, labels, columns, class_names, num_classes, row_names,
                 tuple(sorted(dropped)))


def _named_column(path: str, names: list[str], name: str, what: str,
                  required: bool) -> int | None:
    """The index of the column called `name` (any case), None if absent and not required."""
    if not name:
        return None
    found = [j for j, n in enumerate(names) if n.lower() == name.lower()]
    if len(found) > 1:
        raise DataError(f'csv file {path!r} has {len(found)} columns named {name!r} '
                        f'(columns {[j + 1 for j in found]})')
    if not found:
        if required:
            shown = ', '.join(repr(n) for n in names[:10]) + (' ...' if len(names) > 10 else '')
            raise DataError(f'csv file {path!r} has no {what} column {name!r}; its header has '
                            f'{shown}')
        return None
    return found[0]


def _numbers(path: str, rows: list, features: list, feature_cols: list[int], names: list[str],
             bad_rows: str, dropped: list) -> np.ndarray | None:
    """The feature cells as float32; on a bad cell an error, or (drop) None after adding every
    bad row to `dropped`."""
    flat = [cell for row in features for cell in row]
    try:
        values = np.array(flat, dtype=np.float64).reshape(len(rows), len(feature_cols))
    except ValueError:
        values = None
    if values is not None:
        with np.errstate(over='ignore'):  # Overflow to inf is reported just below.
            x = values.astype(np.float32)
        bad = ~np.isfinite(x)
        if not bad.any():
            return x
        cells = [(r, k) for r, k in np.argwhere(bad)]
    else:
        cells = [(r, k) for r, row in enumerate(features) for k, cell in enumerate(row)
                 if not _is_number(cell) or not math.isfinite(float(cell))]
    if bad_rows != 'drop':
        r, k = cells[0]
        j = feature_cols[k]
        raise _cell_error(path, rows[r][0], j, names[j], features[r][k])
    seen = set()
    for r, k in cells:
        if r not in seen:
            seen.add(r)
            j = feature_cols[k]
            dropped.append((rows[r][0], str(_cell_error(path, rows[r][0], j, names[j],
                                                        features[r][k]))))
    return None


def _parse_labels(path: str, rows: list[tuple[int, list[str]]], col: int,
                  name: str = LABEL_COLUMN) -> tuple[np.ndarray, tuple[str, ...], int]:
    cells = [row[col].strip() for _, row in rows]
    for (line, _), cell in zip(rows, cells):
        if not cell:
            raise DataError(f'csv file {path!r}, line {line}, column {col + 1} '
                            f'({name!r}): empty label')
    if all(_is_number(c) for c in cells):
        numbers = np.array(cells, dtype=np.float64)
        for (line, _), cell, v in zip(rows, cells, numbers):
            if not np.isfinite(v) or v != np.round(v) or v < -1:
                raise DataError(f'csv file {path!r}, line {line}, column {col + 1} '
                                f'({name!r}): label {cell!r} is not an integer >= -1 '
                                f'(-1 = unlabeled)')
        labels = numbers.astype(np.int32)
        return labels, (), int(labels.max()) + 1 if labels.max() >= 0 else 0
    class_names = tuple(sorted(set(cells)))
    lookup = {name: k for k, name in enumerate(class_names)}
    return np.array([lookup[c] for c in cells], np.int32), class_names, len(class_names)


class TableSource(source_lib.ArraySource):
    """An `ArraySource` over a csv table.

    Attributes:
        columns: names of the feature columns, in the order of the vector entries.
    """

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, columns: tuple[str, ...],
                 **kwargs: Any):
        """Args: as `ArraySource`, plus columns (the feature column names)."""
        super().__init__(x, labels, **kwargs)
        self.columns = tuple(columns)


@functools.lru_cache(maxsize=4)
def _cached_table(path: str, mtime_ns: int, size: int) -> Table:
    """Parses a file once per (path, modification time, size): train and eval share it."""
    del mtime_ns, size  # Only part of the cache key.
    table = load_table(path)
    # Shared between callers, so frozen against accidental in-place edits.
    table.x.flags.writeable = False
    table.labels.flags.writeable = False
    return table


def standardize_option(config: Any) -> bool:
    """Reads and validates data.standardize (default False)."""
    value = source_lib.config_value(config, 'standardize', False)
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f'data.standardize must be True or False, got {value!r}')
    return bool(value)


def build_csv(config: Any, split: str) -> TableSource:
    """Builds the 'csv' source from data.path.

    A seeded hold-out of data.eval_fraction (stratified by label when there is a label column)
    gives the eval split. Values are returned as stored; the scaling is the identity, or with
    data.standardize a per-column standardization whose mean and std come from the training
    split (both splits declare the same one, so eval data is scaled like train data).

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        A `TableSource` of float32 vectors [ncols] (label column excluded); its `columns` and
        `class_names` attributes name the features and classes.
    """
    source_lib.check_split(split)
    eval_fraction, seed = source_lib.holdout_options(config)
    standardize = standardize_option(config)
    path = str(source_lib.config_value(config, 'path', ''))
    try:
        stat = os.stat(path) if path else None
    except OSError:
        stat = None
    # A missing path goes through load_table uncached, which raises the right error.
    table = _cached_table(path, stat.st_mtime_ns, stat.st_size) if stat else load_table(path)
    stratify = table.labels if table.num_classes else None
    idx = source_lib.holdout_indices(len(table.x), eval_fraction, seed, split, labels=stratify,
                                     what=f'csv {path!r}')
    if standardize:
        train_idx = idx if split == 'train' else source_lib.holdout_indices(
            len(table.x), eval_fraction, seed, 'train', labels=stratify, what=f'csv {path!r}')
        train_x = table.x[train_idx].astype(np.float64)
        scaling = Scaling.standardized(train_x.mean(axis=0), train_x.std(axis=0))
    else:
        scaling = Scaling.identity(table.x.dtype)
    return TableSource(table.x[idx], table.labels[idx], columns=table.columns,
                       num_classes=table.num_classes, name=f'csv {os.path.basename(path)} {split}',
                       class_names=table.class_names, scaling=scaling)
