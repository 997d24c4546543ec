"""Semi-supervised data: keep the labels of a few chosen examples, hide the rest.

`data.num_labels` picks that many training examples, balanced over the classes and seeded by
`data.label_seed`; `PartialLabels` wraps the training source so that every other example reads
as unlabelled (label -1) everywhere downstream. The held-out split keeps all its labels, for
measuring accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganjax.data.source import Source, config_value
from ganjax.errors import ConfigError, DataError


def source_labels(source: Source, chunk: int = 4096) -> np.ndarray:
    """All labels of a source, int32 [N] (the `labels` attribute when the source has one).

    Args:
        source: any `Source`.
        chunk: examples read per call otherwise.

    Returns:
        The labels, in index order.
    """
    labels = getattr(source, 'labels', None)
    if labels is not None:
        return np.asarray(labels, np.int32)
    parts = [source.get_batch(np.arange(i, min(i + chunk, len(source))))['label']
             for i in range(0, len(source), chunk)]
    return np.concatenate(parts).astype(np.int32)


def choose_labelled(labels: np.ndarray, num_labels: int, num_classes: int, seed: int,
                    what: str = 'dataset') -> np.ndarray:
    """Chooses `num_labels` examples whose labels are kept, balanced over the classes.

    Every class gets num_labels // num_classes examples; the remainder goes one each to classes
    in a seeded random order. The choice depends only on (labels, num_labels, seed).

    Args:
        labels: int labels [N] of the training split (-1 = already unlabelled).
        num_labels: how many labelled examples to keep (>= num_classes).
        num_classes: K.
        seed: `data.label_seed`.
        what: the dataset, for messages.

    Returns:
        Sorted int64 indices of the kept examples.

    Raises:
        ConfigError: for num_labels below the class count or above the labelled examples.
        DataError: when a class has fewer examples than its share.
    """
    labels = np.asarray(labels)
    known = int(np.sum(labels >= 0))
    if num_classes < 1:
        raise ConfigError(f'data.num_labels={num_labels} needs labelled data; {what} has no '
                          'classes')
    if num_labels < num_classes or num_labels > known:
        raise ConfigError(f'data.num_labels={num_labels} must be between the number of classes '
                          f'({num_classes}) and the labelled training examples of {what} '
                          f'({known})')
    rng = np.random.default_rng([seed, 0x1ABE1])
    share = np.full(num_classes, num_labels // num_classes)
    share[rng.permutation(num_classes)[:num_labels % num_classes]] += 1
    chosen = []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        if len(members) < share[k]:
            raise DataError(f'{what}: class {k} has {len(members)} training examples, fewer than '
                            f'its {share[k]} of data.num_labels={num_labels}')
        chosen.append(members[rng.permutation(len(members))[:share[k]]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class PartialLabels:
    """A source whose labels are kept for the chosen examples only (-1 for the others).

    Attributes:
        labelled: sorted indices of the examples that keep their label.
        (and every `Source` attribute of the wrapped source)
    """

    def __init__(self, source: Source, labelled: np.ndarray):
        """Wraps `source`.

        Args:
            source: the training source.
            labelled: indices of the examples whose labels are kept.
        """
        self.source = source
        self.labelled = np.sort(np.asarray(labelled, np.int64))
        self._keep = np.zeros(len(source), bool)
        self._keep[self.labelled] = True
        self.data_shape = source.data_shape
        self.dtype = source.dtype
        self.num_classes = source.num_classes
        self.scaling = source.scaling
        self.class_names = tuple(getattr(source, 'class_names', ()))
        self.description = (f'{source.description}; labels kept for {len(self.labelled)} '
                            f'examples, the other {len(source) - len(self.labelled)} unlabelled')

    def __len__(self) -> int:
        """Returns the number of examples."""
        return len(self.source)

    @property
    def labels(self) -> np.ndarray:
        """All labels as this source gives them, int32 [N] (-1 = unlabelled)."""
        return np.where(self._keep, source_labels(self.source), -1).astype(np.int32)

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The wrapped source's batch with the labels of unchosen examples set to -1."""
        batch = dict(self.source.get_batch(indices))
        idx = np.asarray(indices, np.int64).reshape(-1)
        batch['label'] = np.where(self._keep[idx], batch['label'], -1).astype(np.int32)
        return batch

    def __repr__(self) -> str:
        return f'PartialLabels({self.description})'


def with_partial_labels(source: Source, data_config: Any) -> Source:
    """Applies `data.num_labels` to a training source (unchanged when it is 0).

    Args:
        source: the training split's source.
        data_config: `config.data`.

    Returns:
        `source`, or a `PartialLabels` wrapping it.
    """
    num_labels = int(config_value(data_config, 'num_labels', 0))
    if not num_labels:
        return source
    labelled = choose_labelled(source_labels(source), num_labels, int(source.num_classes),
                               int(config_value(data_config, 'label_seed', 0)), source.description)
    return PartialLabels(source, labelled)
