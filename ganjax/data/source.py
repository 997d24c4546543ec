"""The random-access `Source` interface and the helpers every dataset shares.

A source maps an integer index to one example. Everything here is host-side numpy: the data
package never imports jax, so that reading and shuffling stay cheap and independent of devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, DataError

SPLITS = ('train', 'eval')


@runtime_checkable
class Source(Protocol):
    """A finite (or large virtual) random-access collection of examples.

    Attributes:
        data_shape: shape of ONE example's 'x', e.g. (28, 28, 1) or (2,).
        dtype: numpy dtype of 'x' (uint8 / uint16 for images, float32 for vectors).
        num_classes: number of label classes, 0 when the data is unlabeled.
        description: one line for logs.
        scaling: how 'x' maps to the model's range and back (`Scaling`): models see
            `scaling.to_model(x)`, samples are written back with `scaling.to_data(y)`. Declared
            by every source, never guessed from the dtype; the same for all splits of a dataset.
    """

    data_shape: tuple[int, ...]
    dtype: np.dtype
    num_classes: int
    description: str
    scaling: Scaling

    def __len__(self) -> int:
        """Returns the number of examples."""

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Returns {'x': [n, *data_shape] of dtype, 'label': int32 [n]} for the given indices."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a model builder needs to know about a source.

    Attributes:
        shape: shape of one example, e.g. (32, 32, 3).
        dtype: numpy dtype of the examples.
        num_classes: number of classes (0 = unlabeled).
        scaling: the source's `Scaling` (stored values <-> model range).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    num_classes: int
    scaling: Scaling


def data_spec(source: Source) -> DataSpec:
    """Returns the `DataSpec` (example shape, dtype, class count, scaling) of a source.

    Args:
        source: any `Source`.

    Returns:
        A `DataSpec`.
    """
    return DataSpec(tuple(source.data_shape), np.dtype(source.dtype), int(source.num_classes),
                    source.scaling)


def check_indices(indices: Any, length: int) -> np.ndarray:
    """Validates a batch of indices against a source length.

    Args:
        indices: integer array-like of any shape (flattened).
        length: number of examples in the source.

    Returns:
        The indices as a 1-D int64 array.

    Raises:
        IndexError: for non-integer indices or indices outside [0, length); negative indices
            are refused rather than wrapped, since they always mean a bug upstream.
    """
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros((0,), np.int64)
    if not np.issubdtype(idx.dtype, np.integer):
        raise IndexError(f'indices must be integers, got dtype {idx.dtype}')
    idx = idx.reshape(-1).astype(np.int64)
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= length:
        bad = lo if lo < 0 else hi
        raise IndexError(f'index {bad} out of range for a source of {length} examples')
    return idx


class ArraySource:
    """A source backed by in-memory arrays.

    Attributes:
        data_shape: shape of one example.
        dtype: dtype of 'x'.
        num_classes: number of classes (0 = unlabeled).
        description: one line for logs.
        scaling: the `Scaling` of x.
        class_names: optional names of the classes, indexable by label.
    """

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, num_classes: int, name: str,
                 scaling: Scaling, class_names: tuple[str, ...] = ()):
        """Wraps arrays as a source.

        Args:
            x: examples [N, *data_shape].
            labels: int labels [N] (-1 for unlabeled examples).
            num_classes: number of classes (0 = unlabeled).
            name: dataset and split name used in `description`, e.g. 'mnist_5k train'.
            scaling: how x maps to the model's range (e.g. `Scaling.image(8)` for uint8 pixels);
                its dtype must be x's.
            class_names: optional names of the classes.

        Raises:
            DataError: for a scaling that does not fit x's dtype or feature count.
        """
        if len(x) != len(labels):
            raise ValueError(f'{name}: {len(x)} examples but {len(labels)} labels')
        scaling.check(x.shape[1:], x.dtype, name)
        self.scaling = scaling
        self._x = x
        self._labels = np.asarray(labels, np.int32)
        self.data_shape = tuple(int(d) for d in x.shape[1:])
        self.dtype = x.dtype
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        classes = f'{self.num_classes} classes' if self.num_classes else 'unlabeled'
        self.description = (f'{name}: {len(x)} examples of shape {self.data_shape} {self.dtype}, '
                            f'{classes}')

    def __len__(self) -> int:
        """Returns the number of examples."""
        return len(self._x)

    @property
    def labels(self) -> np.ndarray:
        """All labels, int32 [N] (read-only view)."""
        view = self._labels.view()
        view.flags.writeable = False
        return view

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Returns {'x': [n, *data_shape], 'label': int32 [n]} (copies) for the indices.

        Args:
            indices: integer indices in [0, len(self)).

        Returns:
            The batch dict.
        """
        idx = check_indices(indices, len(self))
        return {'x': self._x[idx], 'label': self._labels[idx]}

    def __repr__(self) -> str:
        return f'ArraySource({self.description})'


class SubsetSource:
    """A fixed subset of another source's examples, e.g. 10% of a training split.

    Attributes:
        data_shape, dtype, num_classes, scaling: the base source's.
        description: the base's, with the subset's size.
        indices: the base source's indices kept, sorted, int64.
    Any other attribute (class names, labels, ...) is read from the base source; `labels`, when
    the base has them, are the subset's.
    """

    def __init__(self, base: Source, indices: np.ndarray):
        """Wraps `base`, keeping `indices` (valid indices into it)."""
        self.indices = np.sort(check_indices(indices, len(base)))
        self._base = base
        self.data_shape = tuple(base.data_shape)
        self.dtype = base.dtype
        self.num_classes = int(base.num_classes)
        self.scaling = base.scaling
        self.description = f'{base.description}; a subset of {len(self.indices)} of them'

    def __len__(self) -> int:
        """Returns the number of examples kept."""
        return len(self.indices)

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Returns the base source's batch for the kept examples at `indices` (into the subset)."""
        return self._base.get_batch(self.indices[check_indices(indices, len(self))])

    @property
    def labels(self) -> np.ndarray:
        """The kept examples' labels, int32 [N] (when the base source has labels)."""
        return np.asarray(self._base.labels)[self.indices]

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__') or name == '_base':
            raise AttributeError(name)
        return getattr(self._base, name)

    def __repr__(self) -> str:
        return f'SubsetSource({self.description})'


def train_subset(source: Source, num_examples: int, seed: int) -> Source:
    """Keeps `num_examples` examples of a training split, drawn at random (data.train_examples).

    Args:
        source: the training split.
        num_examples: how many to keep; 0 = all (the source itself).
        seed: seed of the draw (data.split_seed), so that every run with the same seed trains on
            the same examples whatever its model seed.

    Returns:
        The source, or a `SubsetSource` of it.

    Raises:
        ConfigError: when the split has fewer than `num_examples` examples.
    """
    if not num_examples:
        return source
    if num_examples > len(source):
        raise ConfigError(f'data.train_examples={num_examples} exceeds the {len(source)} '
                          f'examples of {source.description}')
    rng = np.random.default_rng([seed, 0x5B5E7])
    return SubsetSource(source, rng.permutation(len(source))[:num_examples])


def config_value(config: Any, key: str, default: Any) -> Any:
    """Reads `key` from a ConfigDict, a mapping or an attribute object, else `default`."""
    if hasattr(config, 'get'):
        return config.get(key, default)
    return getattr(config, key, default)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_split(split: str) -> None:
    """Raises ConfigError unless `split` is 'train' or 'eval'."""
    if split not in SPLITS:
        raise ConfigError(f'data split must be one of {SPLITS}, got {split!r}')


def image_options(config: Any) -> tuple[int, int]:
    """Reads and validates data.image_size and data.channels.

    Args:
        config: the data config.

    Returns:
        (image_size, channels); 0 means keep the native value.
    """
    image_size = config_value(config, 'image_size', 0)
    channels = config_value(config, 'channels', 0)
    if not _is_int(image_size) or image_size < 0:
        raise ConfigError(f'data.image_size must be an integer >= 0 (0 = native), '
                          f'got {image_size!r}')
    if not _is_int(channels) or channels not in (0, 1, 3):
        raise ConfigError(f'data.channels must be 0 (native), 1 (grayscale) or 3 (RGB), '
                          f'got {channels!r}')
    return int(image_size), int(channels)


def holdout_options(config: Any) -> tuple[float, int]:
    """Reads and validates data.eval_fraction and data.split_seed.

    Args:
        config: the data config.

    Returns:
        (eval_fraction, split_seed).
    """
    fraction = config_value(config, 'eval_fraction', 0.1)
    seed = config_value(config, 'split_seed', 0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0 <= fraction < 1):
        raise ConfigError(f'data.eval_fraction must be a number in [0, 1), got {fraction!r}')
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f'data.split_seed must be an integer >= 0, got {seed!r}')
    return float(fraction), int(seed)


def holdout_indices(num_examples: int, eval_fraction: float, seed: int, split: str,
                    labels: np.ndarray | None = None, what: str = 'dataset') -> np.ndarray:
    """Splits range(num_examples) into train and eval parts with a seeded permutation.

    With labels the split is stratified: every class gives (as nearly as possible) the same share
    to eval, and the total eval size is exactly round(num_examples * eval_fraction), with the
    rounding remainders given to the classes with the largest fractional quotas. The split depends
    only on (num_examples, eval_fraction, seed, labels), never on the order of the classes.

    Args:
        num_examples: size of the dataset.
        eval_fraction: share held out for eval, in [0, 1).
        seed: seed of the permutation (data.split_seed).
        split: 'train' or 'eval'.
        labels: optional int labels [num_examples] to stratify by (-1 counts as its own group).
        what: name of the dataset for error messages.

    Returns:
        Sorted int64 indices of the requested split.

    Raises:
        DataError: if the requested split would be empty.
    """
    check_split(split)
    rng = np.random.default_rng([seed, 0x5EED])
    num_eval = int(round(num_examples * eval_fraction))
    if labels is None:
        eval_idx = rng.permutation(num_examples)[:num_eval]
    else:
        labels = np.asarray(labels)
        groups, counts = np.unique(labels, return_counts=True)
        quotas = counts * (num_eval / max(num_examples, 1))
        take = np.floor(quotas).astype(np.int64)
        # Largest remainder, ties broken by group order, so the total is exactly num_eval.
        short = num_eval - int(take.sum())
        if short > 0:
            order = np.argsort(-(quotas - take), kind='stable')
            take[order[:short]] += 1
        parts = []
        for group, k in zip(groups, take):
            members = np.flatnonzero(labels == group)
            parts.append(members[rng.permutation(len(members))[:k]])
        eval_idx = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
    mask = np.zeros(num_examples, bool)
    mask[eval_idx] = True
    chosen = np.flatnonzero(mask if split == 'eval' else ~mask).astype(np.int64)
    if len(chosen) == 0:
        if split == 'eval':
            raise DataError(f'{what}: the eval split is empty ({num_examples} examples x '
                            f'data.eval_fraction={eval_fraction} rounds to 0); raise '
                            f'data.eval_fraction')
        raise DataError(f'{what}: the train split is empty ({num_examples} examples, '
                        f'data.eval_fraction={eval_fraction})')
    return chosen
