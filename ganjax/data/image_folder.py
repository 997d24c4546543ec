"""'image_folder': every image file under a directory, decoded into memory once.

Decoding everything at construction costs memory but means a corrupt file stops the run before
training starts (naming the file) rather than hours into it, and makes batches free to assemble.

Bit depth: 8-bit images are stored as uint8, 16-bit ones (16-bit grayscale PNG, 8- or 16-bit
TIFF read with tifffile) as uint16, each with its `Scaling.image` to [-1, 1]. A folder must hold
one bit depth: a mix is refused, naming a file of each, since no single scaling fits both.
16-bit colour PNGs are refused too: PIL reads only their top 8 bits (save them as TIFF).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
from typing import Any

import numpy as np
import tifffile
from PIL import Image, ImageOps

from ganjax.data import source as source_lib
from ganjax.data import transforms
from ganjax.data.scaling import IMAGE_BITS, Scaling
from ganjax.errors import ConfigError, DataError

# Refuse folders whose decoded pixels would not fit comfortably in host memory; such datasets
# should be prepared as tfds (array_record) and streamed instead.
MAX_IN_MEMORY_BYTES = 8 << 30

# PIL modes with no color: a folder made only of these is native grayscale.
_GRAY_MODES = frozenset({'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'})
# PIL modes of 16-bit grayscale files ('I', 32-bit, is how older Pillows open 16-bit PNGs).
_16BIT_MODES = frozenset({'I', 'I;16', 'I;16B', 'I;16L', 'I;16N'})
# Read with tifffile, which (unlike PIL) reads 16-bit colour and multi-sample TIFFs.
TIFF_EXTENSIONS = frozenset({'.tif', '.tiff'})


@dataclasses.dataclass(frozen=True)
class _Header:
    """What the header of an image file says: (width, height), grayscale or not, bit depth."""
    size: tuple[int, int]
    gray: bool
    bits: int


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Returns the lower-case file extensions PIL can open (e.g. '.png', '.jpg', '.webp')."""
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def list_images(root: str) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """Finds the image files under root, recursively, in sorted order.

    Hidden files and folders (names starting with '.') and files whose extension PIL does not
    know are skipped. When any first-level subfolder holds images, the sorted names of those
    subfolders are the classes; images lying directly in root then get label -1.

    Args:
        root: the directory.

    Returns:
        (paths relative to root, int32 labels, class names).

    Raises:
        ConfigError: if root is ''.
        DataError: if root is missing, not a directory, or holds no image files.
    """
    if not root:
        raise ConfigError("data.name='image_folder' needs data.path, a directory of images")
    if not os.path.exists(root):
        raise DataError(f'image folder {root!r} does not exist')
    if not os.path.isdir(root):
        raise DataError(f'image folder path {root!r} is not a directory')
    extensions = image_extensions()
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        for name in sorted(filenames):
            if not name.startswith('.') and os.path.splitext(name)[1].lower() in extensions:
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    if not files:
        raise DataError(f'image folder {root!r} holds no image files (looked recursively for '
                        f'PIL formats such as .png, .jpg, .jpeg, .bmp, .gif, .webp)')
    files.sort()
    tops = [f.split(os.sep, 1)[0] if os.sep in f else None for f in files]
    class_names = tuple(sorted({t for t in tops if t is not None}))
    lookup = {name: k for k, name in enumerate(class_names)}
    labels = np.array([lookup[t] if t is not None else -1 for t in tops], np.int32)
    return files, labels, class_names


def _is_tiff(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in TIFF_EXTENSIONS


def _tiff_layout(path: str, shape: tuple[int, ...], axes: str, dtype: np.dtype) -> int:
    """Checks that a TIFF holds one 2-D uint8/uint16 image; returns its bit depth."""
    if not (len(shape) == 2 or (len(shape) == 3 and axes.endswith('S') and shape[2] <= 4)):
        raise DataError(f'image file {path!r} holds an array of shape {tuple(shape)} (axes '
                        f'{axes!r}); ganjax reads one 2-D image per TIFF file, gray or RGB(A)')
    if np.dtype(dtype) not in IMAGE_BITS:
        raise DataError(f'image file {path!r} holds {np.dtype(dtype)} pixels; ganjax reads 8- and '
                        f'16-bit unsigned images (uint8, uint16)')
    return IMAGE_BITS[np.dtype(dtype)]


def _probe(path: str) -> _Header:
    """Reads an image header without decoding the pixels."""
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes, dtype = tuple(series.shape), series.axes, series.dtype
            bits = _tiff_layout(path, shape, axes, dtype)
            return _Header((shape[1], shape[0]), len(shape) == 2 or shape[2] <= 2, bits)
        with Image.open(path) as img:
            size, mode, fmt, tile = img.size, img.mode, img.format, img.tile
    except DataError:
        raise
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...).
        raise DataError(f'cannot read image file {path!r}: {e}') from e
    raw = tile[0].args if fmt == 'PNG' and tile else ''
    if mode not in _16BIT_MODES and isinstance(raw, str) and ';16' in raw:
        raise DataError(f'image file {path!r} is a 16-bit {mode} PNG, which PIL reads as 8 bits; '
                        f'save it as a 16-bit TIFF (read in full) or as 8 bits')
    return _Header(size, mode in _GRAY_MODES, 16 if mode in _16BIT_MODES else 8)


def _decode_native(path: str, bits: int) -> np.ndarray:
    """Decodes a TIFF, or a 16-bit grayscale file, to [H, W, C] uint8 / uint16 at native size."""
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                _tiff_layout(path, tuple(series.shape), series.axes, series.dtype)
                try:
                    arr = series.asarray()
                except ValueError as e:
                    if 'imagecodecs' not in str(e):
                        raise
                    arr = _pil_tiff(path, tuple(series.shape), series.dtype, str(e))
        else:
            with Image.open(path) as img:
                img.load()
                arr = np.asarray(ImageOps.exif_transpose(img))
    except DataError:
        raise
    except Exception as e:  # A truncated or corrupt file fails while reading, with varied types.
        raise DataError(f'cannot decode image file {path!r}: {e}') from e
    top = 2 ** bits - 1
    # PIL's mode 'I' is 32-bit: make sure its values are 16-bit ones.
    if arr.dtype.itemsize > bits // 8 and (arr.min() < 0 or arr.max() > top):
        raise DataError(f'image file {path!r} holds values outside [0, {top}] '
                        f'({arr.min()} to {arr.max()}); ganjax reads 8- and 16-bit images')
    arr = arr.astype(np.uint16 if bits == 16 else np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _pil_tiff(path: str, shape: tuple[int, ...], dtype: np.dtype, reason: str) -> np.ndarray:
    """Decodes a TIFF whose compression (e.g. LZW) tifffile needs imagecodecs for, with PIL.

    PIL reads such files in full when they are grayscale or 8-bit; anything it would change
    (16-bit colour comes out as 8 bits) is refused.
    """
    with Image.open(path) as img:
        img.load()
        arr = np.asarray(img)
    if arr.shape != shape or arr.dtype.kind != np.dtype(dtype).kind or (
            arr.dtype.itemsize != np.dtype(dtype).itemsize):
        raise DataError(f'cannot decode image file {path!r}: {reason} (pip install imagecodecs)')
    return arr


def _decode(path: str, image_size: int, channels: int, bits: int = 8) -> np.ndarray:
    """Decodes, orients (EXIF), converts and center-crop-resizes one image to [s, s, c].

    8-bit files give uint8 (converted by PIL, as always); 16-bit files and TIFFs give uint8 or
    uint16 as stored, converted and resized by `transforms.fit_image`.
    """
    if bits == 16 or _is_tiff(path):
        return transforms.fit_image(_decode_native(path, bits), image_size, channels)
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            img = img.convert('L' if channels == 1 else 'RGB')
            arr = np.asarray(img)
    except Exception as e:  # A truncated or corrupt file fails in load(), with varied types.
        raise DataError(f'cannot decode image file {path!r}: {e}') from e
    if arr.ndim == 2:
        arr = arr[..., None]
    return transforms.resize_square(arr, image_size)


@functools.lru_cache(maxsize=2)
def _load(root: str, image_size: int, channels: int,
          signature: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray,
                                                                 tuple[str, ...], tuple[str, ...],
                                                                 int, int]:
    """Decodes a folder; cached on the files' names, sizes and times so train/eval share it."""
    del signature  # Only part of the cache key.
    files, labels, class_names = list_images(root)
    paths = [os.path.join(root, f) for f in files]
    headers = [_probe(p) for p in paths]
    depths = {h.bits: f for h, f in zip(headers, files)}
    if len(depths) > 1:
        raise DataError(f'image folder {root!r} mixes 8-bit images (e.g. {depths[8]!r}) and '
                        f'16-bit images (e.g. {depths[16]!r}); convert them to one bit depth')
    bits = headers[0].bits
    dtype = np.dtype(np.uint16 if bits == 16 else np.uint8)
    if not channels:
        channels = 1 if all(h.gray for h in headers) else 3
    if not image_size:
        image_size = min(headers[0].size)
    need = len(paths) * image_size * image_size * channels * dtype.itemsize
    if need > MAX_IN_MEMORY_BYTES:
        raise DataError(f'image folder {root!r}: {len(paths)} images of {image_size}x{image_size}x'
                        f'{channels} need {need / 2**30:.1f} GiB decoded, over the '
                        f'{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB in-memory limit; lower '
                        f'data.image_size or prepare the data as a tfds dataset')
    x = np.empty((len(paths), image_size, image_size, channels), dtype)
    # PIL releases the GIL while decoding and resizing, so threads give a real speed-up.
    workers = min(32, (os.cpu_count() or 1) + 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for i, img in enumerate(pool.map(functools.partial(_decode, image_size=image_size,
                                                           channels=channels, bits=bits), paths)):
            if img.dtype != dtype:
                raise DataError(f'image file {paths[i]!r} decoded as {img.dtype}, expected {dtype}')
            x[i] = img
    x.flags.writeable = False
    labels.flags.writeable = False
    return x, labels, tuple(files), class_names, image_size, channels


def _signature(root: str) -> tuple[tuple[str, int, int], ...]:
    files, _, _ = list_images(root)
    out = []
    for f in files:
        st = os.stat(os.path.join(root, f))
        out.append((f, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ImageFolderSource(source_lib.ArraySource):
    """An `ArraySource` of decoded images from a folder.

    Attributes:
        files: paths (relative to the folder) of this split's examples, in index order.
        class_names: the class subfolder names (label k is class_names[k]); () if unlabeled.
    """

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, files: tuple[str, ...],
                 **kwargs: Any):
        """Args: as `ArraySource`, plus files (the relative path of each example)."""
        super().__init__(x, labels, **kwargs)
        self.files = tuple(files)


def build_image_folder(config: Any, split: str) -> ImageFolderSource:
    """Builds the 'image_folder' source from data.path.

    Images are center-cropped to a square and resized to data.image_size (0 = the shorter side
    of the first image in sorted order), converted to data.channels (0 = 1 when every file is
    grayscale, else 3). A seeded hold-out of data.eval_fraction, stratified by class, gives eval.
    8-bit folders give uint8, 16-bit ones uint16 (see the module docstring), scaled to [-1, 1].

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        An `ImageFolderSource` of uint8 or uint16 images [s, s, c].

    Raises:
        DataError: for a missing or empty folder, a file that cannot be decoded (named), or a
            folder that mixes 8- and 16-bit images.
    """
    source_lib.check_split(split)
    image_size, channels = source_lib.image_options(config)
    eval_fraction, seed = source_lib.holdout_options(config)
    root = str(source_lib.config_value(config, 'path', ''))
    root = os.path.abspath(root) if root else root
    x, labels, files, class_names, _, _ = _load(root, image_size, channels, _signature(root))
    idx = source_lib.holdout_indices(len(x), eval_fraction, seed, split,
                                     labels=labels if class_names else None,
                                     what=f'image folder {root!r}')
    return ImageFolderSource(x[idx], labels[idx], files=tuple(files[i] for i in idx),
                             num_classes=len(class_names), class_names=class_names,
                             name=f'image_folder {os.path.basename(root)} {split}',
                             scaling=Scaling.image(IMAGE_BITS[x.dtype]))
