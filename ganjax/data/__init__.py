"""Datasets as random-access sources, and a deterministic, resumable batch iterator.

Host-side only (numpy, PIL, tfds without TensorFlow): nothing here imports jax.

    source = build_source(config.data, 'train')
    it = BatchIterator(source, config.data.batch_size, seed, prefetch=config.data.prefetch)
    batch = next(it)   # {'x': uint8 / uint16 images or float32 vectors, 'label': int32}
    model_x = source.scaling.to_model(batch['x'])   # float32 in the model's range
    samples = source.scaling.to_data(generated)     # back in the data's own units and dtype
"""

from __future__ import annotations

from typing import Any, Callable

from ganjax.data.embedded import build_mnist_5k
from ganjax.data.expression import build_expression, build_pbmc68k
from ganjax.data.fasta import build_fasta
from ganjax.data.image_folder import build_image_folder
from ganjax.data.iterator import BatchIterator
from ganjax.data.labels import PartialLabels, with_partial_labels
from ganjax.data.scaling import Scaling
from ganjax.data.source import (ArraySource, DataSpec, Source, SubsetSource, config_value,
                                data_spec, train_subset)
from ganjax.data.tabular import build_csv
from ganjax.data.toy import build_grid25, build_ring8
from ganjax.data.tfds_source import build_tfds
from ganjax.errors import lookup

DATASETS: dict[str, Callable[[Any, str], Source]] = {
    'mnist_5k': build_mnist_5k,
    'tfds': build_tfds,
    'image_folder': build_image_folder,
    'csv': build_csv,
    'expression': build_expression,
    'pbmc68k_reduced': build_pbmc68k,
    'fasta': build_fasta,
    'ring8': build_ring8,
    'grid25': build_grid25,
}


def build_source(data_config: Any, split: str) -> Source:
    """Builds the source named by data_config.name for a split.

    Args:
        data_config: the config.data section (ConfigDict).
        split: 'train' or 'eval'.

    Returns:
        A `Source` (for 'train' with data.train_examples > 0, a random subset of the split).

    Raises:
        ConfigError: for an unknown dataset name or split, or invalid data options.
        DataError: for missing, empty or corrupt data.
    """
    name = config_value(data_config, 'name', 'mnist_5k')
    source = lookup(DATASETS, name, 'data.name')(data_config, split)
    if split == 'train':
        # Small-data runs train on a subset (the held-out split stays whole); semi-supervised
        # runs then see only data.num_labels of its labels.
        source = train_subset(source, int(config_value(data_config, 'train_examples', 0)),
                              int(config_value(data_config, 'split_seed', 0)))
        source = with_partial_labels(source, data_config)
    return source


__all__ = [
    'ArraySource', 'BatchIterator', 'DATASETS', 'DataSpec', 'PartialLabels', 'Scaling', 'Source',
    'SubsetSource', 'build_source', 'data_spec',
]
