"""'image_folder': every image file under a directory, decoded into memory once.

Decoding everything at construction costs memory but means a corrupt file stops the run before
training starts (naming the file) rather than hours into it, and makes batches free to assemble.

Bit depth: 8-bit images are stored as uint8, 16-bit ones (16-bit grayscale PNG, 8- or 16-bit
TIFF read with tifffile) as uint16, each with its `Scaling.image` to [-1, 1] (or the per-channel
`Scaling.percentile` window with data.normalize='percentile'). A folder must hold one bit depth:
a mix is refused, naming a file of each, since no single scaling fits both. 16-bit colour PNGs
are refused too: PIL reads only their top 8 bits (save them as TIFF).

Channels (the layout rule). A PNG/JPEG/... has 1 channel (grayscale modes) or 3 (every colour
mode; alpha is dropped). A TIFF is read with tifffile, by the axes of its first series:
    [H, W]      (axes YX)              one channel;
    [H, W, S]   (YXS, samples/pixel)   S channels, less any alpha samples (an RGBA TIFF has 3);
                                       write such files with planarconfig='contig' (or planar,
                                       SYX, the same rule);
    [C, H, W]   (CYX, QYX, IYX)        pages are channels, e.g. a 5-channel cell-painting stack
                                       saved one channel per page.
Refused as ambiguous, naming the file: a Z or T axis (a z-stack or time series, not channels),
more than 3 dimensions, and a stack of generic pages (QYX, IYX) with more pages than the pages
have rows or columns: that is how an [H, W, C] array saved without planarconfig='contig' reads
(tifffile stores [64, 64, 5] as 64 pages of 64x5), so it cannot be told from real channels.
Gray and colour files mix (converted to data.channels, or to RGB); any other channel count must
be the same in every file.

Size. Without cropping, images are center-cropped to a square and resized to data.image_size;
with data.image_size=0 every image must have the same shorter side (a file that differs is an
error naming it, since resizing it silently would change its pixel size). With data.crop_size,
images of any size (at least crop_size on each side) give crop_size squares (then resized to
data.image_size if set): data.crops_per_image seeded random crops per image, or with
data.crop_mode='tile' the non-overlapping tiles of a centred grid. The crops are drawn once, when
the folder is loaded, from (data.split_seed, the file's index): the source is then a fixed array
like any other, so the iterator's (seed, position) determinism, exact resume and the on-device
data path work unchanged, and every epoch shows each of the crops once (in a new order). The
train/eval split is made over files before cropping, so no eval crop comes from a train image.

Bad files (unreadable, truncated, empty, a refused layout, another bit depth, channel count or
size than the rest): one DataError naming the first of them; with data.skip_bad_files=True they
are left out instead, and their count and the first few names are logged (and put in the
source's description and `skipped`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import logging
import os
from typing import Any

import numpy as np
import tifffile
from PIL import Image, ImageOps

from ganjax.data import source as source_lib
from ganjax.data import transforms
from ganjax.data.scaling import IMAGE_BITS, Scaling, channel_percentiles
from ganjax.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# Refuse folders whose decoded pixels would not fit comfortably in host memory; such datasets
# should be prepared as tfds (array_record) and streamed instead.
MAX_IN_MEMORY_BYTES = 8 << 30

# PIL modes with no color: a folder made only of these is native grayscale.
_GRAY_MODES = frozenset({'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'})
# PIL modes of 16-bit grayscale files ('I', 32-bit, is how older Pillows open 16-bit PNGs).
_16BIT_MODES = frozenset({'I', 'I;16', 'I;16B', 'I;16L', 'I;16N'})
# Read with tifffile, which (unlike PIL) reads 16-bit colour and multi-sample TIFFs.
TIFF_EXTENSIONS = frozenset({'.tif', '.tiff'})
# TIFF axes whose planes are channels: tifffile's C (ImageJ, OME), S (planar samples), and the
# generic page axes Q (tifffile's own files) and I (other multi-page files).
_CHANNEL_AXES = frozenset('CSQI')
_GENERIC_PAGE_AXES = frozenset('QI')
# TIFF ExtraSamples values that mark alpha (associated, unassociated).
_ALPHA_SAMPLES = frozenset({1, 2})
# Options of data.normalize and data.crop_mode.
NORMALIZE = ('none', 'percentile')
CROP_MODES = ('random', 'tile')
# How many bad file names a skip message lists.
_NAMES_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class _Header:
    """What the header of an image file says.

    Attributes:
        size: (width, height).
        channels: channels the file gives (the layout rule of the module docstring).
        bits: 8 or 16.
        layout: how the decoded array becomes [H, W, C]: 'pil', 'yx', 'yxs' or 'cyx'.
        keep: the channels kept of a TIFF with alpha samples (alpha left out); () keeps all.
    """
    size: tuple[int, int]
    channels: int
    bits: int
    layout: str = 'pil'
    keep: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Options:
    """The image_folder options of the data config, validated (see `options`)."""
    image_size: int
    channels: int
    crop_size: int
    crops_per_image: int
    crop_mode: str
    normalize: str
    percentiles: tuple[float, float]
    skip_bad_files: bool


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def options(config: Any) -> Options:
    """Reads and validates the image_folder keys of a data config (missing keys: defaults).

    Args:
        config: the data config.

    Returns:
        The `Options`.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    image_size, channels = source_lib.image_options(config)
    get = functools.partial(source_lib.config_value, config)
    crop_size, per_image = get('crop_size', 0), get('crops_per_image', 16)
    crop_mode, normalize = get('crop_mode', 'random'), get('normalize', 'none')
    levels, skip = get('percentiles', (0.5, 99.5)), get('skip_bad_files', False)
    if not _is_int(crop_size) or crop_size < 0:
        raise ConfigError(f'data.crop_size must be an integer >= 0 (0 = no cropping), '
                          f'got {crop_size!r}')
    if not _is_int(per_image) or per_image < 1:
        raise ConfigError(f'data.crops_per_image must be a positive integer, got {per_image!r}')
    if crop_mode not in CROP_MODES:
        raise ConfigError(f'data.crop_mode={crop_mode!r} is not one of {list(CROP_MODES)}')
    if normalize not in NORMALIZE:
        raise ConfigError(f'data.normalize={normalize!r} is not one of {list(NORMALIZE)}')
    if not isinstance(skip, bool):
        raise ConfigError(f'data.skip_bad_files must be True or False, got {skip!r}')
    if (not isinstance(levels, (tuple, list)) or len(levels) != 2 or
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels) or
            not 0 <= levels[0] < levels[1] <= 100):
        raise ConfigError(f'data.percentiles must be (low, high) with 0 <= low < high <= 100, '
                          f'e.g. (0.5, 99.5); got {levels!r}')
    return Options(image_size, channels, int(crop_size), int(per_image), str(crop_mode),
                   str(normalize), (float(levels[0]), float(levels[1])), skip)


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


def _tiff_header(path: str, series: Any, page: Any) -> _Header:
    """Applies the layout rule (module docstring) to a TIFF's first series."""
    shape, axes, dtype = tuple(series.shape), str(series.axes), np.dtype(series.dtype)
    if np.dtype(dtype) not in IMAGE_BITS:
        raise DataError(f'image file {path!r} holds {np.dtype(dtype)} pixels; ganjax reads 8- and '
                        f'16-bit unsigned images (uint8, uint16)')
    bits = IMAGE_BITS[dtype]
    if len(shape) == 2 and axes.endswith('YX'):
        return _Header((shape[1], shape[0]), 1, bits, 'yx')
    if len(shape) == 3 and axes in ('YXS', 'SYX'):
        # Samples per pixel, contiguous (YXS) or planar (SYX); the trailing ones may be alpha.
        count = shape[2] if axes == 'YXS' else shape[0]
        extra = tuple(int(v) for v in (getattr(page, 'extrasamples', ()) or ()))
        first_extra = count - len(extra)
        keep = tuple(k for k in range(count)
                     if k < first_extra or extra[k - first_extra] not in _ALPHA_SAMPLES)
        if not keep:
            raise DataError(f'image file {path!r} holds only alpha samples')
        size = (shape[1], shape[0]) if axes == 'YXS' else (shape[2], shape[1])
        return _Header(size, len(keep), bits, 'yxs' if axes == 'YXS' else 'cyx',
                       keep if len(keep) < count else ())
    if len(shape) == 3 and axes[1:] == 'YX' and axes[0] in _CHANNEL_AXES:
        if axes[0] in _GENERIC_PAGE_AXES and shape[0] > min(shape[1:]):
            raise DataError(
                f'image file {path!r} reads as {shape[0]} pages of {shape[1]}x{shape[2]} '
                f'(axes {axes!r}), more pages than rows or columns: is it an [H, W, C] array '
                f"saved without planarconfig='contig'? Save [H, W, C] with "
                f"tifffile.imwrite(path, x, photometric='minisblack', planarconfig='contig'), "
                f'or [C, H, W] with one channel per page')
        return _Header((shape[2], shape[1]), shape[0], bits, 'cyx')
    if len(shape) == 3 and axes[0] in 'ZT':
        what = 'z-stack' if axes[0] == 'Z' else 'time series'
        raise DataError(f'image file {path!r} is a {what} of shape {shape} (axes {axes!r}), not '
                        f'a multi-channel image; save one plane per file, or channels on a C '
                        f'axis')
    raise DataError(f'image file {path!r} holds an array of shape {shape} (axes {axes!r}); '
                    f'ganjax reads [H, W], [H, W, C] (samples) or [C, H, W] (pages = '
                    f'channels) TIFFs, one image per file')


def _probe(path: str) -> _Header:
    """Reads an image header without decoding the pixels."""
    try:
        if os.path.getsize(path) == 0:
            raise DataError(f'image file {path!r} is empty (0 bytes)')
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise DataError(f'image file {path!r} holds no image')
                return _tiff_header(path, tif.series[0], tif.pages[0])
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
    return _Header(size, 1 if mode in _GRAY_MODES else 3, 16 if mode in _16BIT_MODES else 8)


def _decode_native(path: str, header: _Header) -> np.ndarray:
    """Decodes a TIFF, or a 16-bit grayscale file, to [H, W, C] uint8 / uint16 at native size."""
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                if _tiff_header(path, series, tif.pages[0]) != header:
                    raise DataError(f'image file {path!r} changed while it was read')
                try:
                    arr = series.asarray()
                except ValueError as e:
                    if 'imagecodecs' not in str(e):
                        raise
                    arr = _pil_tiff(path, tuple(series.shape), series.dtype, str(e))
            if header.layout == 'cyx':
                arr = np.moveaxis(arr, 0, -1)
            if header.keep:
                arr = arr[..., list(header.keep)]
        else:
            with Image.open(path) as img:
                img.load()
                arr = np.asarray(ImageOps.exif_transpose(img))
    except DataError:
        raise
    except Exception as e:  # A truncated or corrupt file fails while reading, with varied types.
        raise DataError(f'cannot decode image file {path!r}: {e}') from e
    top = 2 ** header.bits - 1
    # PIL's mode 'I' is 32-bit: make sure its values are 16-bit ones.
    if arr.dtype.itemsize > header.bits // 8 and (arr.min() < 0 or arr.max() > top):
        raise DataError(f'image file {path!r} holds values outside [0, {top}] '
                        f'({arr.min()} to {arr.max()}); ganjax reads 8- and 16-bit images')
    arr = arr.astype(np.uint16 if header.bits == 16 else np.uint8)
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


def _decode(path: str, header: _Header, image_size: int, channels: int) -> np.ndarray:
    """Decodes, orients (EXIF) and converts one image to `channels`; with image_size > 0 also
    center-crops and resizes it to [image_size, image_size, channels] (else native size).

    8-bit files give uint8 (converted by PIL, as always); 16-bit files and TIFFs give uint8 or
    uint16 as stored, converted and resized by `transforms.fit_image`.
    """
    if header.bits == 16 or _is_tiff(path):
        img = _decode_native(path, header)
        if img.shape[-1] != header.channels:
            raise DataError(f'image file {path!r} decoded to {img.shape[-1]} channels, its header '
                            f'says {header.channels} (a truncated file?)')
        return transforms.fit_image(img, image_size, channels)
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
    return transforms.resize_square(arr, image_size) if image_size else np.ascontiguousarray(arr)


def _majority(values: dict[int, Any]) -> Any:
    """The most common value of {file index: value}; ties go to the first file's value."""
    counts = collections.Counter(values.values())
    best = max(counts.values())
    return next(v for _, v in sorted(values.items()) if counts[v] == best)


@dataclasses.dataclass(frozen=True)
class _Folder:
    """A decoded folder (cached by `_load`)."""
    images: Any  # uint8/uint16 [N, s, s, c], or a tuple of [h, w, c] when cropping
    labels: np.ndarray
    files: tuple[str, ...]
    index: tuple[int, ...]  # each kept file's index among all the folder's files
    class_names: tuple[str, ...]
    bits: int
    skipped: tuple[tuple[str, str], ...]  # (file, why) of each bad file left out


def _settle(problems: dict[int, str], skip: bool) -> None:
    """Raises the first problem (in file order) unless bad files are skipped."""
    if problems and not skip:
        more = len(problems) - 1
        also = f'{more} more bad file(s); ' if more else ''
        raise DataError(f'{problems[min(problems)]} ({also}data.skip_bad_files=True leaves bad '
                        f'files out)')


def _check_layout(headers: dict[int, _Header], files: list[str], root: str, opts: Options,
                  problems: dict[int, str]) -> tuple[int, int, int]:
    """Finds the folder's bit depth, channel count and native side; marks the files that differ.

    Returns:
        (bits, channels, image side or 0 when cropping).
    """
    def mark(i: int, message: str) -> None:
        problems[i] = message
        del headers[i]

    bits = _majority({i: h.bits for i, h in headers.items()})
    example = next(files[i] for i, h in sorted(headers.items()) if h.bits == bits)
    for i, h in sorted(headers.items()):
        if h.bits != bits:
            mark(i, f'image folder {root!r} mixes {h.bits}-bit images (e.g. {files[i]!r}) and '
                    f'{bits}-bit images (e.g. {example!r}); convert them to one bit depth')
    counts = {i: h.channels for i, h in headers.items()}
    if opts.channels:
        allowed = {1, 3, opts.channels}
        channels = opts.channels
        for i in sorted(headers):
            if counts[i] not in allowed:
                mark(i, f'image file {os.path.join(root, files[i])!r} has {counts[i]} channels, '
                        f'which data.channels={opts.channels} cannot convert (only gray <-> RGB)')
    else:
        if set(counts.values()) <= {1, 3}:
            channels = 3 if 3 in counts.values() else 1
        else:
            channels = _majority(counts)
            example = next(files[i] for i in sorted(counts) if counts[i] == channels)
            for i in sorted(headers):
                if counts[i] != channels:
                    mark(i, f'image file {os.path.join(root, files[i])!r} has {counts[i]} '
                            f'channel(s), the other images of {root!r} have {channels} (e.g. '
                            f'{example!r}); a folder holds one channel layout')
    side = opts.image_size
    if opts.crop_size:
        side = 0
        for i, h in sorted(headers.items()):
            if min(h.size) < opts.crop_size:
                mark(i, f'image file {os.path.join(root, files[i])!r} is {h.size[0]}x'
                        f'{h.size[1]}, smaller than data.crop_size={opts.crop_size}')
    elif not side and headers:
        side = _majority({i: min(h.size) for i, h in headers.items()})
        example = next(files[i] for i, h in sorted(headers.items()) if min(h.size) == side)
        for i, h in sorted(headers.items()):
            if min(h.size) != side:
                mark(i, f'image file {os.path.join(root, files[i])!r} is {h.size[0]}x'
                        f'{h.size[1]}, the other images of {root!r} are {side} pixels on their '
                        f'shorter side (e.g. {example!r}); set data.image_size to resize all '
                        f'images to one size, or data.crop_size to crop them')
    return bits, channels, side


@functools.lru_cache(maxsize=2)
def _load(root: str, opts: Options, signature: tuple[tuple[str, int, int], ...]) -> _Folder:
    """Decodes a folder; cached on the files' names, sizes and times so train/eval share it."""
    del signature  # Only part of the cache key.
    files, labels, class_names = list_images(root)
    paths = [os.path.join(root, f) for f in files]
    problems: dict[int, str] = {}
    headers: dict[int, _Header] = {}
    for i, path in enumerate(paths):
        try:
            headers[i] = _probe(path)
        except DataError as e:
            problems[i] = str(e)
    # Every file is looked at before any is reported, so that the error can count them all.
    bits, channels, side = (8, 0, 0)
    if headers:
        bits, channels, side = _check_layout(headers, files, root, opts, problems)
    dtype = np.dtype(np.uint16 if bits == 16 else np.uint8)
    need = sum(h.size[0] * h.size[1] if opts.crop_size else side * side
               for h in headers.values()) * channels * dtype.itemsize
    if need > MAX_IN_MEMORY_BYTES:
        raise DataError(f'image folder {root!r}: {len(headers)} images of {channels} channels '
                        f'need {need / 2**30:.1f} GiB decoded, over the '
                        f'{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB in-memory limit; lower '
                        f'data.image_size or prepare the data as a tfds dataset')
    order = sorted(headers)
    decoded: dict[int, np.ndarray] = {}

    def decode(i: int) -> tuple[int, np.ndarray | str]:
        try:
            img = _decode(paths[i], headers[i], 0 if opts.crop_size else side, channels)
        except DataError as e:
            return i, str(e)
        if img.dtype != dtype:
            return i, f'image file {paths[i]!r} decoded as {img.dtype}, expected {dtype}'
        return i, img

    # PIL releases the GIL while decoding and resizing, so threads give a real speed-up.
    workers = min(32, (os.cpu_count() or 1) + 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for i, img in pool.map(decode, order):
            if isinstance(img, str):
                problems[i] = img
            else:
                decoded[i] = img
    _settle(problems, opts.skip_bad_files)
    kept = tuple(i for i in order if i in decoded)
    skipped = tuple((files[i], problems[i]) for i in sorted(problems))
    if skipped:
        names = ', '.join(repr(f) for f, _ in skipped[:_NAMES_SHOWN])
        logger.warning('image folder %r: skipped %d bad file(s) of %d (data.skip_bad_files): %s%s',
                       root, len(skipped), len(files), names,
                       ', ...' if len(skipped) > _NAMES_SHOWN else '')
    if not kept:
        raise DataError(f'image folder {root!r}: all {len(files)} image files are bad, e.g. '
                        f'{skipped[0][1]}')
    if opts.crop_size:
        images = tuple(decoded[i] for i in kept)
        for img in images:
            img.flags.writeable = False
    else:
        images = np.stack([decoded[i] for i in kept])
        images.flags.writeable = False
    kept_labels = labels[list(kept)]
    kept_labels.flags.writeable = False
    return _Folder(images, kept_labels, tuple(files[i] for i in kept), kept, class_names, bits,
                   skipped)


def _signature(root: str) -> tuple[tuple[str, int, int], ...]:
    files, _, _ = list_images(root)
    out = []
    for f in files:
        st = os.stat(os.path.join(root, f))
        out.append((f, st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _train_window(root: str, opts: Options, signature: tuple[tuple[str, int, int], ...],
                  eval_fraction: float, seed: int) -> Scaling:
    """The percentile `Scaling` of a folder's training split (cached: both splits ask)."""
    folder = _load(root, opts, signature)
    train = source_lib.holdout_indices(len(folder.files), eval_fraction, seed, 'train',
                                       labels=folder.labels if folder.class_names else None,
                                       what=f'image folder {root!r}')
    images = [folder.images[i] for i in train]
    low, high = channel_percentiles(images, opts.percentiles)
    return Scaling.percentile(low, high, dtype=images[0].dtype)


def _crop_all(images: list[np.ndarray], index: list[int], opts: Options,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crops of a split's images.

    Returns:
        (crops [M, s, s, c], the position in `images` of each crop's image [M], its
        (top, left) in that image [M, 2]).
    """
    s = opts.crop_size
    corners = []
    for img, i in zip(images, index):
        if opts.crop_mode == 'tile':
            corners.append(transforms.tile_origins(img.shape[:2], s))
        else:
            # Seeded per file (its index in the whole folder), so a file's crops do not depend
            # on the split, on the other files or on the order of decoding.
            rng = np.random.default_rng([seed, 0xC809, i])
            corners.append(transforms.random_crop_origins(img.shape[:2], s,
                                                          opts.crops_per_image, rng))
    count = sum(len(c) for c in corners)
    side = opts.image_size or s
    need = count * side * side * images[0].shape[-1] * images[0].dtype.itemsize
    if need > MAX_IN_MEMORY_BYTES:
        raise DataError(f'{count} crops need {need / 2**30:.1f} GiB, over the '
                        f'{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB in-memory limit; lower '
                        f'data.crops_per_image or data.crop_size')
    crops = np.empty((count, side, side, images[0].shape[-1]), images[0].dtype)
    j = 0
    for img, corner in zip(images, corners):
        for top, left in corner:
            crop = img[top:top + s, left:left + s]
            crops[j] = transforms.resize_square(crop, side) if side != s else crop
            j += 1
    owners = np.repeat(np.arange(len(images)), [len(c) for c in corners])
    origins = np.asarray([o for c in corners for o in c], np.int32).reshape(-1, 2)
    return crops, owners, origins


class ImageFolderSource(source_lib.ArraySource):
    """An `ArraySource` of decoded images (or crops of them) from a folder.

    Attributes:
        files: paths (relative to the folder) of this split's examples, in index order (the
            file each crop comes from, when cropping).
        class_names: the class subfolder names (label k is class_names[k]); () if unlabeled.
        origins: int32 [N, 2], the (top, left) of each crop in its file; None without cropping.
        skipped: (file, why) of each bad file left out (data.skip_bad_files); () if none.
    """

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, files: tuple[str, ...],
                 origins: np.ndarray | None = None,
                 skipped: tuple[tuple[str, str], ...] = (), **kwargs: Any):
        """Args: as `ArraySource`, plus files (the relative path of each example), origins
        (each crop's corner) and skipped (the bad files left out)."""
        super().__init__(x, labels, **kwargs)
        self.files = tuple(files)
        self.origins = origins
        self.skipped = tuple(skipped)


def build_image_folder(config: Any, split: str) -> ImageFolderSource:
    """Builds the 'image_folder' source from data.path.

    Without data.crop_size, images are center-cropped to a square and resized to
    data.image_size (0 = keep the native size, which every image must then share); with it,
    each image gives data.crops_per_image random crops or its tiles (data.crop_mode). Channels
    are converted to data.channels (0 = native: 1 when every file is grayscale, 3 for colour,
    else the files' common channel count). A seeded hold-out of data.eval_fraction of the files,
    stratified by class, gives eval. 8-bit folders give uint8, 16-bit ones uint16 (see the
    module docstring), scaled to [-1, 1] by bit depth (data.normalize='none') or by the
    per-channel data.percentiles of the training split's pixels (data.normalize='percentile').

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        An `ImageFolderSource` of uint8 or uint16 images [s, s, c].

    Raises:
        ConfigError: for invalid options.
        DataError: for a missing or empty folder, or a bad file (named; see the module
            docstring), unless data.skip_bad_files leaves bad files out.
    """
    source_lib.check_split(split)
    opts = options(config)
    eval_fraction, seed = source_lib.holdout_options(config)
    root = str(source_lib.config_value(config, 'path', ''))
    root = os.path.abspath(root) if root else root
    signature = _signature(root)
    folder = _load(root, opts, signature)
    idx = source_lib.holdout_indices(len(folder.files), eval_fraction, seed, split,
                                     labels=folder.labels if folder.class_names else None,
                                     what=f'image folder {root!r}')
    name = f'image_folder {os.path.basename(root)} {split}'
    origins = None
    if opts.crop_size:
        x, owners, origins = _crop_all([folder.images[i] for i in idx],
                                       [folder.index[i] for i in idx], opts, seed)
        labels = folder.labels[idx][owners]
        files = tuple(folder.files[idx[k]] for k in owners)
        side = f'{opts.crop_size}x{opts.crop_size}'
        name += (f' ({len(idx)} files, {opts.crops_per_image} random {side} crops each)'
                 if opts.crop_mode == 'random' else f' ({len(idx)} files, {side} tiles)')
    else:
        x, labels = folder.images[idx], folder.labels[idx]
        files = tuple(folder.files[i] for i in idx)
    if folder.skipped:
        name += f' ({len(folder.skipped)} bad files skipped)'
    if opts.normalize == 'percentile':
        scaling = _train_window(root, opts, signature, eval_fraction, seed)
    else:
        scaling = Scaling.image(folder.bits)
    return ImageFolderSource(x, labels, files=files, origins=origins, skipped=folder.skipped,
                             num_classes=len(folder.class_names),
                             class_names=folder.class_names, name=name, scaling=scaling)
