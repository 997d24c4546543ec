"""'tfds': prepared TensorFlow Datasets read by random access, without TensorFlow.

`tfds.data_source` reads the array_record files of a prepared dataset directly. Preparing a
dataset the first time (downloading, converting) does need TensorFlow and internet, which is
why it is a separate step (`pip install ganjax[prepare]`), never done implicitly here.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np

from ganjax.data import source as source_lib
from ganjax.data import transforms
from ganjax.data.scaling import IMAGE_BITS, Scaling
from ganjax.errors import ConfigError, DataError

IMAGE_KEY = 'image'
LABEL_KEY = 'label'
# Splits tried, in order, as the eval split before falling back to a hold-out of train.
EVAL_SPLITS = ('test', 'validation')


def _tfds():
    # Imported lazily: tfds takes ~0.5 s to import and only this dataset needs it.
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    return tfds


@contextlib.contextmanager
def _quiet_absl():
    """Hides tfds' absl warnings (e.g. 'Variant folder ... has no dataset_info.json') while it
    probes a data_dir: whatever they describe, ganjax's own error says it in one message."""
    logger = logging.getLogger('absl')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def prepare_instructions(name: str, data_dir: str | None) -> str:
    """Returns the text that tells a user how to prepare a tfds dataset for ganjax.

    Args:
        name: the tfds dataset name.
        data_dir: the data directory ('' or None = tfds default).

    Returns:
        A multi-line instruction string.
    """
    where = f'data_dir={data_dir!r}' if data_dir else 'data_dir=None'
    return (
        f'Prepare it once, on a machine with internet, in the random-access array_record format:\n'
        f'  pip install "ganjax[prepare]"   # installs tensorflow, needed only for preparing\n'
        f'  python -c "import tensorflow_datasets as tfds; tfds.builder({name!r}, {where}, '
        f"file_format='array_record').download_and_prepare()\"\n"
        f'then point data.data_dir at that directory (datasets prepared in the default tfrecord '
        f'format cannot be read by random access; prepare them again as above).')


@_quiet_absl()
def _open(name: str, split: str, data_dir: str | None) -> Any:
    """Opens one split as a random-access data source, with errors a user can act on."""
    tfds = _tfds()
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DataError(f'tfds has no dataset named {name!r} (data.tfds_name); see '
                        f'tfds.list_builders() for the names') from e
    except Exception as e:  # tfds signals an unprepared dataset with many error types.
        where = data_dir or 'the default tfds data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)'
        try:
            prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
        except Exception:  # pylint: disable=broad-except
            prepared = None
        if prepared is False:
            reason = f'is not prepared in {where}'
        else:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else ''
            reason = (f'cannot be read by random access from {where} '
                      f'({type(e).__name__}: {first_line})')
        raise DataError(f'tfds dataset {name!r} split {split!r} {reason}.\n'
                        f'{prepare_instructions(name, data_dir)}') from e


@_quiet_absl()
def _known_splits(name: str, data_dir: str | None) -> set[str] | None:
    """The prepared splits of a dataset, or None when tfds cannot say (e.g. under mock_data)."""
    tfds = _tfds()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        splits = set(builder.info.splits.keys())
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DataError(f'tfds has no dataset named {name!r} (data.tfds_name); see '
                        f'tfds.list_builders() for the names') from e
    except Exception:  # pylint: disable=broad-except
        return None
    return splits or None


class TfdsSource:
    """A (possibly index-remapped) view of one tfds split.

    Attributes:
        data_shape: (image_size, image_size, channels), or the feature's native shape.
        dtype: dtype of the image feature (uint8 or uint16).
        scaling: `Scaling.image` of the feature's bit depth (pixels -> [-1, 1]).
        num_classes: classes of the 'label' feature (0 if it has none).
        class_names: the 'label' feature's class names, () when it has none.
        description: one line for logs.
        tfds_split: the tfds split read ('train', 'test', ...).
    """

    def __init__(self, name: str, tfds_split: str, split: str, data_dir: str | None,
                 image_size: int, channels: int, indices: np.ndarray | None = None,
                 data: Any = None):
        """Opens the split.

        Args:
            name: tfds dataset name (may include config and version, 'name/config:1.0.0').
            tfds_split: the tfds split to read.
            split: 'train' or 'eval' (for the description).
            data_dir: tfds data_dir or None.
            image_size: output size (0 = native; the feature must then have a fixed shape).
            channels: output channels (0 = native).
            indices: optional subset of the split's examples (hold-out), in index order.
            data: an already opened data source of this split (avoids opening it twice).
        """
        self._data = data if data is not None else _open(name, tfds_split, data_dir)
        info = self._data.dataset_info
        features = info.features
        if IMAGE_KEY not in features:
            raise DataError(f'tfds dataset {name!r} has no {IMAGE_KEY!r} feature (it has '
                            f'{sorted(features.keys())}); ganjax reads image datasets from tfds')
        native = tuple(features[IMAGE_KEY].shape)
        if len(native) != 3:
            raise DataError(f'tfds dataset {name!r}: {IMAGE_KEY!r} has shape {native}, '
                            f'expected [height, width, channels]')
        if not image_size and (native[0] is None or native[1] is None):
            raise ConfigError(f'tfds dataset {name!r} has images of varying size {native}; set '
                              f'data.image_size')
        if native[2] is None and not channels:
            raise ConfigError(f'tfds dataset {name!r} has a varying channel count; set '
                              f'data.channels')
        self._image_size = image_size
        self._channels = channels
        self.data_shape = (image_size or native[0], image_size or native[1], channels or native[2])
        self.dtype = np.dtype(features[IMAGE_KEY].np_dtype)
        if self.dtype not in IMAGE_BITS:
            raise DataError(f'tfds dataset {name!r}: {IMAGE_KEY!r} has dtype {self.dtype}; ganjax '
                            f'reads uint8 and uint16 images')
        self.scaling = Scaling.image(IMAGE_BITS[self.dtype])
        label = features[LABEL_KEY] if LABEL_KEY in features else None
        self.num_classes = int(getattr(label, 'num_classes', 0) or 0)
        # A ClassLabel feature names its classes (label k is names[k]).
        names = tuple(getattr(label, 'names', None) or ())
        self.class_names = names if len(names) == self.num_classes else ()
        self._has_label = label is not None
        self._indices = None if indices is None else np.asarray(indices, np.int64)
        self.tfds_split = tfds_split
        held = '' if indices is None else f' (held-out part of {tfds_split!r})'
        classes = f'{self.num_classes} classes' if self.num_classes else 'unlabeled'
        self.description = (f'tfds {name} {split}: split {tfds_split!r}{held}, {len(self)} '
                            f'examples of shape {self.data_shape} {self.dtype}, {classes}')

    def __len__(self) -> int:
        """Returns the number of examples in this view."""
        return len(self._data) if self._indices is None else len(self._indices)

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Reads, decodes and (if configured) resizes / converts a batch.

        Args:
            indices: integer indices in [0, len(self)).

        Returns:
            {'x': [n, *data_shape] of dtype, 'label': int32 [n] (-1 without a label feature)}.
        """
        idx = source_lib.check_indices(indices, len(self))
        if self._indices is not None:
            idx = self._indices[idx]
        # One record at a time: the batched __getitems__ is broken under tfds' mock_data, and
        # array_record reads are per record anyway.
        examples = [self._data[int(i)] for i in idx]
        images = [transforms.fit_image(np.asarray(ex[IMAGE_KEY]), self._image_size, self._channels)
                  for ex in examples]
        if images:
            x = np.stack(images).astype(self.dtype, copy=False)
        else:
            x = np.zeros((0, *self.data_shape), self.dtype)
        if x.shape[1:] != self.data_shape:
            raise DataError(f'{self.description}: an example has shape {x.shape[1:]}, '
                            f'expected {self.data_shape}')
        if self._has_label:
            label = np.array([int(ex[LABEL_KEY]) for ex in examples], np.int32)
        else:
            label = np.full(len(examples), -1, np.int32)
        return {'x': x, 'label': label}

    def __repr__(self) -> str:
        return f'TfdsSource({self.description})'


def build_tfds(config: Any, split: str) -> TfdsSource:
    """Builds the 'tfds' source for data.tfds_name.

    The eval split is the dataset's 'test' (else 'validation') split when it has one, else a
    seeded random hold-out of data.eval_fraction of 'train' (not stratified: that would need
    every label read up front).

    Args:
        config: the data config (tfds_name, data_dir, image_size, channels, eval_fraction,
            split_seed).
        split: 'train' or 'eval'.

    Returns:
        A `TfdsSource`.

    Raises:
        ConfigError: if data.tfds_name is empty.
        DataError: if the dataset is unknown or not prepared in data_dir (with instructions).
    """
    source_lib.check_split(split)
    image_size, channels = source_lib.image_options(config)
    eval_fraction, seed = source_lib.holdout_options(config)
    name = str(source_lib.config_value(config, 'tfds_name', ''))
    if not name:
        raise ConfigError("data.name='tfds' needs data.tfds_name, e.g. 'mnist' or 'cifar10'")
    data_dir = str(source_lib.config_value(config, 'data_dir', '')) or None

    train = _open(name, 'train', data_dir)
    known = _known_splits(name, data_dir)
    eval_split = None
    eval_data = None
    for candidate in EVAL_SPLITS:
        if known is not None:
            if candidate in known:
                eval_split = candidate
                break
            continue
        # Splits unknown (tfds' mock_data hides them): probe by opening.
        try:
            eval_data = _open(name, candidate, data_dir)
        except DataError:
            continue
        eval_split = candidate
        break

    if eval_split is not None:
        if split == 'train':
            return TfdsSource(name, 'train', split, data_dir, image_size, channels, data=train)
        return TfdsSource(name, eval_split, split, data_dir, image_size, channels,
                          data=eval_data)
    idx = source_lib.holdout_indices(len(train), eval_fraction, seed, split,
                                     what=f'tfds {name!r}')
    return TfdsSource(name, 'train', split, data_dir, image_size, channels, indices=idx,
                      data=train)
