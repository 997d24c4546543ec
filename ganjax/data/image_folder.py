"""'image_folder': every image file under a directory, decoded into memory once.

Decoding everything at construction costs memory but means a corrupt file stops the run before
training starts (naming the file) rather than hours into it, and makes batches free to assemble.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ganjax.data import source as source_lib
from ganjax.data import transforms
from ganjax.errors import ConfigError, DataError

# Refuse folders whose decoded pixels would not fit comfortably in host memory; such datasets
# should be prepared as tfds (array_record) and streamed instead.
MAX_IN_MEMORY_BYTES = 8 << 30

# PIL modes with no color: a folder made only of these is native grayscale.
_GRAY_MODES = frozenset({'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'})


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


def _probe(path: str) -> tuple[tuple[int, int], str]:
    """Reads an image header: ((width, height), mode), without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...).
        raise DataError(f'cannot read image file {path!r}: {e}') from e


def _decode(path: str, image_size: int, channels: int) -> np.ndarray:
    """Decodes, orients (EXIF), converts and center-crop-resizes one image to [s, s, c] uint8."""
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
    first_size, _ = _probe(paths[0])
    modes = [_probe(p)[1] for p in paths]
    if not channels:
        channels = 1 if all(m in _GRAY_MODES for m in modes) else 3
    if not image_size:
        image_size = min(first_size)
    need = len(paths) * image_size * image_size * channels
    if need > MAX_IN_MEMORY_BYTES:
        raise DataError(f'image folder {root!r}: {len(paths)} images of {image_size}x{image_size}x'
                        f'{channels} need {need / 2**30:.1f} GiB decoded, over the '
                        f'{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB in-memory limit; lower '
                        f'data.image_size or prepare the data as a tfds dataset')
    x = np.empty((len(paths), image_size, image_size, channels), np.uint8)
    # PIL releases the GIL while decoding and resizing, so threads give a real speed-up.
    workers = min(32, (os.cpu_count() or 1) + 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for i, img in enumerate(pool.map(functools.partial(_decode, image_size=image_size,
                                                           channels=channels), paths)):
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

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        An `ImageFolderSource` of uint8 images [s, s, c].

    Raises:
        DataError: for a missing or empty folder, or a file that cannot be decoded (named).
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
                             name=f'image_folder {os.path.basename(root)} {split}')
