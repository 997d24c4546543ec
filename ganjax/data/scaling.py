"""How a source's stored values map to the model's range, and back.

Every source declares a `Scaling` (its `scaling` attribute): models train on
`scaling.to_model(x)`, and samples are written back in the data's own units with
`scaling.to_data(y)`. Declared by the data rather than guessed from the dtype, because a dtype
does not say what its values mean: uint8 may hold pixels or a one-hot sequence, uint16 may hold
16-bit pixels, float32 may hold points already in the model's units or a table to standardize.

Every kind is one affine map per feature, model = stored * scale + offset, so `to_model` is a
multiply and an add with numpy constants: the same code runs on numpy arrays on the host and on
jax arrays inside a compiled step (this package never imports jax).

Kinds:
    image         integer pixels [0, 2^bits - 1] -> [-1, 1]; `to_data` clips, rounds and casts
                  back to uint8 / uint16.
    identity      float data already in the model's units (the 2D mixtures, raw tables).
    standardized  per-column mean / std -> 0 / 1; `to_data` returns the table's own units.
    one_hot       one-hot (or soft) encodings, not rescaled; `to_data` returns the model's
                  float32 probabilities for the caller to decode (e.g. argmax).
    percentile    per-channel intensity window [low, high] (percentiles of the training split)
                  -> [-1, 1], clipped; `to_data` maps [-1, 1] back to [low, high] in the data's
                  integer units (microscopy: a few bright pixels do not squash the rest).

A clipped kind (`clip=True`: percentile) adds one clip to [-1, 1] after the affine map; the
values clipped away cannot come back, every other value does (within rounding).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import numpy as np

from ganjax.errors import DataError

KINDS = ('image', 'identity', 'standardized', 'one_hot', 'percentile')
#: Bit depth of the image dtypes that sources store: `Scaling.image(IMAGE_BITS[x.dtype])`.
IMAGE_BITS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}
_FIELDS = ('kind', 'dtype', 'scale', 'offset', 'quantize')
# Written only when set, so that the records of the unclipped kinds stay as they were.
_OPTIONAL_FIELDS = ('clip',)


@dataclasses.dataclass(frozen=True)
class Scaling:
    """model = stored.astype(float32) * scale + offset, per feature (the last axis).

    Build one with `image`, `identity`, `standardized`, `one_hot` or `percentile` rather than
    directly.

    Attributes:
        kind: one of KINDS (what the map means; the arithmetic is the same for all).
        dtype: numpy dtype name of the stored values ('uint8', 'uint16', 'float32', ...).
        scale: multiplier, one value for every feature or one per feature (last axis).
        offset: added after scaling; one value, or one per feature.
        quantize: whether `to_data` rounds to `dtype` and clips to its range (integer images);
            otherwise `to_data` returns float32.
        clip: whether `to_model` clips its result to [-1, 1] (a window of the stored values).
    """

    kind: str
    dtype: str
    scale: tuple[float, ...] = (1.0,)
    offset: tuple[float, ...] = (0.0,)
    quantize: bool = False
    clip: bool = False
    # float32 constants of the forward map and float64 ones of the inverse, built once.
    _scale32: Any = dataclasses.field(init=False, repr=False, compare=False)
    _offset32: Any = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, 'scale', tuple(float(s) for s in np.ravel(self.scale)))
        object.__setattr__(self, 'offset', tuple(float(o) for o in np.ravel(self.offset)))
        object.__setattr__(self, 'dtype', np.dtype(self.dtype).name)
        object.__setattr__(self, 'clip', bool(self.clip))
        if self.kind not in KINDS:
            raise DataError(f'scaling kind {self.kind!r} is not one of {list(KINDS)}')
        sizes = {len(self.scale), len(self.offset)} - {1}
        if not self.scale or not self.offset or len(sizes) > 1:
            raise DataError(f'scaling {self.kind!r}: scale ({len(self.scale)} values) and offset '
                            f'({len(self.offset)}) must each have 1 value or one per feature')
        if not all(np.isfinite(self.scale)) or not all(np.isfinite(self.offset)) or (
                0.0 in self.scale):
            raise DataError(f'scaling {self.kind!r}: scale and offset must be finite and scale '
                            f'non-zero')
        if self.quantize and not np.issubdtype(np.dtype(self.dtype), np.integer):
            raise DataError(f'scaling {self.kind!r}: only integer data can be quantized, got '
                            f'dtype {self.dtype}')
        object.__setattr__(self, '_scale32', _constant(self.scale))
        object.__setattr__(self, '_offset32', _constant(self.offset))

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def image(cls, bits: int = 8) -> Scaling:
        """Integer pixels [0, 2^bits - 1] -> [-1, 1], stored as uint8 (bits <= 8) or uint16.

        For 8 bits this is exactly `x.astype(float32) * (2 / 255) - 1`.

        Args:
            bits: bit depth of the pixels, 1 to 16.

        Returns:
            The Scaling.
        """
        if not 1 <= int(bits) <= 16:
            raise DataError(f'image bit depth must be 1 to 16, got {bits}')
        top = 2 ** int(bits) - 1
        return cls('image', 'uint8' if bits <= 8 else 'uint16', (2.0 / top,), (-1.0,),
                   quantize=True)

    @classmethod
    def identity(cls, dtype: Any = 'float32') -> Scaling:
        """Data already in the model's units (cast to float32, nothing else)."""
        return cls('identity', np.dtype(dtype).name)

    @classmethod
    def standardized(cls, mean: Sequence[float], std: Sequence[float],
                     dtype: Any = 'float32') -> Scaling:
        """Per-column (x - mean) / std, so each column has mean 0 and std 1.

        Args:
            mean: per-column means (of the training split).
            std: per-column standard deviations; a constant column (std 0) is only centered.
            dtype: the stored dtype.

        Returns:
            The Scaling.
        """
        mean = np.asarray(mean, np.float64).ravel()
        std = np.asarray(std, np.float64).ravel()
        std = np.where(std > 0, std, 1.0)
        return cls('standardized', np.dtype(dtype).name, tuple(1.0 / std), tuple(-mean / std))

    @classmethod
    def one_hot(cls, dtype: Any = 'float32') -> Scaling:
        """One-hot encodings (any stored dtype), used by the model as float32 without rescaling."""
        return cls('one_hot', np.dtype(dtype).name)

    @classmethod
    def percentile(cls, low: Sequence[float], high: Sequence[float],
                   dtype: Any = 'uint16') -> Scaling:
        """Per-channel window [low, high] -> [-1, 1], clipped (percentile normalisation).

        The usual intensity normalisation of fluorescence microscopy (e.g. CellProfiler's and
        csbdeep's percentile normalisation): low and high are percentiles of each channel over
        the training split, e.g. 0.5 and 99.5, so that a few saturated or dead pixels do not
        set the range. Values outside the window are clipped to it.

        Args:
            low: per-channel stored value that maps to -1.
            high: per-channel stored value that maps to +1; a channel with high <= low (a
                constant channel) gets high = low + 1, so that it maps to -1 and back.
            dtype: the stored dtype; integer dtypes are rounded back by `to_data`.

        Returns:
            The Scaling.
        """
        low = np.asarray(low, np.float64).ravel()
        high = np.asarray(high, np.float64).ravel()
        if low.shape != high.shape:
            raise DataError(f'percentile scaling: {low.size} low values but {high.size} high ones')
        high = np.where(high > low, high, low + 1.0)
        scale = 2.0 / (high - low)
        integer = np.issubdtype(np.dtype(dtype), np.integer)
        return cls('percentile', np.dtype(dtype).name, tuple(scale), tuple(-1.0 - low * scale),
                   quantize=integer, clip=True)

    @property
    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the stored values (per feature) that map to -1 and +1."""
        scale, offset = np.asarray(self.scale), np.asarray(self.offset)
        return (-1.0 - offset) / scale, (1.0 - offset) / scale

    # -- the maps -------------------------------------------------------------------------------

    def to_model(self, x):
        """Stored values -> float32 model input.

        Uses only `.astype`, arithmetic with numpy constants and `.clip`, so it works on numpy
        arrays and, unchanged, on jax arrays inside a jitted function.

        Args:
            x: a batch [..., features] of stored values (numpy or jax array).

        Returns:
            float32 array of the same shape (numpy for numpy input, jax for jax input).
        """
        y = x.astype(np.float32) * self._scale32 + self._offset32
        return y.clip(-1.0, 1.0) if self.clip else y

    def to_data(self, y: np.ndarray) -> np.ndarray:
        """Model output -> the data's own units.

        Integer images are clipped to the model's range [-1, 1], mapped to [0, 2^bits - 1],
        rounded and cast to their dtype (NaN becomes the lowest value). A clipped kind
        (percentile) clips y to [-1, 1] first, so samples stay inside the stored window. Other
        kinds come back as float32 in the data's units (one-hot: the probabilities, for the
        caller to decode).

        Args:
            y: model outputs [..., features] (host array).

        Returns:
            numpy array of `dtype` (quantized kinds) or float32.
        """
        y = np.asarray(y, np.float64)
        if self.clip:
            y = np.clip(y, -1.0, 1.0)
        x = (y - np.asarray(self.offset)) / np.asarray(self.scale)
        if not self.quantize:
            return x.astype(np.float32)
        info = np.iinfo(np.dtype(self.dtype))
        x = np.clip(np.rint(np.nan_to_num(x, nan=info.min)), info.min, info.max)
        return x.astype(self.dtype)

    @property
    def mean(self) -> np.ndarray:
        """The stored value that maps to model 0 (per feature): the mean of a standardized table."""
        return -np.asarray(self.offset) / np.asarray(self.scale)

    @property
    def std(self) -> np.ndarray:
        """The stored difference that maps to model 1 (per feature): a standardized table's std."""
        return 1.0 / np.asarray(self.scale)

    def check(self, data_shape: Sequence[int], dtype: Any, what: str) -> None:
        """Raises DataError unless this scaling fits examples of `data_shape` and `dtype`.

        Args:
            data_shape: shape of one example.
            dtype: dtype of the stored examples.
            what: the source, for the message.
        """
        if np.dtype(dtype) != np.dtype(self.dtype):
            raise DataError(f'{what}: data of dtype {np.dtype(dtype).name} with a scaling for '
                            f'{self.dtype}')
        size = max(len(self.scale), len(self.offset))
        if size > 1 and (not data_shape or data_shape[-1] != size):
            raise DataError(f'{what}: a scaling of {size} features for examples of shape '
                            f'{tuple(data_shape)}')

    def describe(self) -> str:
        """One line for logs, e.g. 'image scaling of uint16 data' or '... per feature'."""
        per = ', per feature' if max(len(self.scale), len(self.offset)) > 1 else ''
        return f'{self.kind} scaling of {self.dtype} data{per}'

    # -- run directory --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict that `from_json` turns back into an equal Scaling."""
        record = {'kind': self.kind, 'dtype': self.dtype, 'scale': list(self.scale),
                  'offset': list(self.offset), 'quantize': self.quantize}
        if self.clip:
            record['clip'] = True
        return record

    @classmethod
    def from_json(cls, record: Any) -> Scaling:
        """The Scaling of a `to_json` record (a dict, or its JSON text).

        Args:
            record: the record.

        Returns:
            The Scaling.

        Raises:
            DataError: for a record that is not a scaling (names what is wrong).
        """
        if isinstance(record, str):
            try:
                record = json.loads(record)
            except json.JSONDecodeError as e:
                raise DataError(f'scaling record is not JSON: {e}') from e
        if not isinstance(record, dict) or not (
                set(_FIELDS) <= set(record) <= set(_FIELDS + _OPTIONAL_FIELDS)):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(f'scaling record must have the keys {list(_FIELDS)} (and optionally '
                            f'{list(_OPTIONAL_FIELDS)}), got {keys}')
        try:
            return cls(str(record['kind']), np.dtype(record['dtype']).name,
                       tuple(float(v) for v in record['scale']),
                       tuple(float(v) for v in record['offset']), bool(record['quantize']),
                       bool(record.get('clip', False)))
        except (TypeError, ValueError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f'scaling record {record}: {e}') from e


def _constant(values: tuple[float, ...]):
    """A float32 numpy scalar for one value (broadcasts over anything), else a [features] array."""
    if len(values) == 1:
        return np.float32(values[0])
    return np.asarray(values, np.float32)


def channel_percentiles(images: Sequence[np.ndarray], levels: Sequence[float]) -> np.ndarray:
    """Per-channel percentiles of the pixels of integer images, from histograms.

    Equal to `np.percentile(all_pixels_of_channel, levels)` (linear interpolation) without
    gathering the pixels: one bincount per image and channel, so a folder of 16-bit images
    costs 65,536 counts per channel rather than a sorted copy of every pixel.

    Args:
        images: uint8 / uint16 arrays [..., H, W, C], all with the same C (e.g. a list of images
            of different sizes, or one stacked array).
        levels: percentiles in [0, 100], e.g. (0.5, 99.5).

    Returns:
        float64 [len(levels), C].

    Raises:
        DataError: for non-integer images, mixed channel counts, or no pixels.
    """
    images = [np.asarray(img) for img in images] if not isinstance(images, np.ndarray) else (
        [images])
    channels = {img.shape[-1] for img in images}
    if len(channels) != 1 or not all(img.dtype in IMAGE_BITS for img in images):
        raise DataError('percentiles need uint8 / uint16 images with one channel count, got '
                        f'{sorted({img.dtype.name for img in images})} with '
                        f'{sorted(channels)} channels')
    (c,) = channels
    bins = 2 ** max(IMAGE_BITS[img.dtype] for img in images)
    counts = np.zeros((c, bins), np.int64)
    for img in images:
        flat = img.reshape(-1, c)
        for k in range(c):
            counts[k] += np.bincount(flat[:, k], minlength=bins)
    n = int(counts[0].sum())
    if n == 0:
        raise DataError('percentiles of no pixels')
    out = np.empty((len(levels), c), np.float64)
    for k in range(c):
        cumulative = np.cumsum(counts[k])
        for j, level in enumerate(levels):
            # np.percentile's 'linear' method: the order statistics at floor(q) and floor(q) + 1.
            q = float(level) / 100.0 * (n - 1)
            i = int(np.floor(q))
            lo = np.searchsorted(cumulative, i, side='right')
            hi = np.searchsorted(cumulative, min(i + 1, n - 1), side='right')
            out[j, k] = lo + (q - i) * (hi - lo)
    return out
