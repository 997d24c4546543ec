"""Turning generated samples into pictures (image grids, scatter plots, heatmaps), and image
samples into files in the data's own units (a folder per class, an image_folder dataset)."""

import math
import os

import numpy as np
from PIL import Image

from ganjax.errors import GanjaxError


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Maps model outputs in [-1, 1] to uint8 [0, 255], clipping what lies outside.

    Args:
      x: float array.

    Returns:
      uint8 array of the same shape.
    """
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles images [N, H, W, C] (uint8) into one [rows*(H+pad)+pad, cols*(W+pad)+pad, C] image.

    Args:
      images: uint8 [N, H, W, C] with C in {1, 3}.
      ncols: columns; ceil(sqrt(N)) if None.
      pad: pixels of black between tiles.

    Returns:
      uint8 [Hg, Wg, C].
    """
    n, h, w, c = images.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = images[i]
    return grid


def channel_montage(images: np.ndarray) -> np.ndarray:
    """Lays each image's channels side by side as one grayscale image, to show many channels.

    Args:
      images: [N, H, W, C].

    Returns:
      [N, H, W * C, 1], channel k in columns [k * W, (k + 1) * W).
    """
    n, h, w, c = images.shape
    return np.moveaxis(images, -1, 2).reshape(n, h, w * c, 1)


def samples_figure(samples: np.ndarray, reference: np.ndarray | None = None,
                   ncols: int | None = None) -> np.ndarray:
    """Renders a batch of samples of any data shape as one RGB or grayscale uint8 picture.

    Images [N, H, W, C] become a grid (C other than 1 or 3: each sample's channels side by side
    in gray, `channel_montage`); 2D points a scatter plot; other vectors and 1D sequences a
    heatmap with one row per sample (the natural view of expression profiles and sequences).

    Args:
      samples: float [N, ...] in the model's output range.
      reference: optional real 2D points [M, 2], drawn in grey behind a scatter plot; they fix the
        axes (their range plus half of it on each side), so pictures from different steps of a
        run compare at one scale. Samples outside are counted in the title.
      ncols: columns of an image grid (ceil(sqrt(N)) if None): the samples per class gives a row
        per class.

    Returns:
      uint8 [H, W, C] picture.
    """
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 4 and samples.shape[-1] not in (1, 3):
        return make_grid(to_uint8(channel_montage(samples)),
                         ncols or max(1, math.ceil(math.sqrt(len(samples) / samples.shape[-1]))))
    if samples.ndim == 4 and samples.shape[-1] in (1, 3):
        return make_grid(to_uint8(samples), ncols)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if samples.ndim == 2 and samples.shape[1] == 2:
        title = f'{len(samples)} samples'
        if reference is not None:
            reference = np.asarray(reference, np.float32)
            ax.scatter(reference[:, 0], reference[:, 1], s=4, c='0.75', label='real')
            lo, hi = reference.min(axis=0), reference.max(axis=0)
            lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            outside = int(np.sum(np.any((samples < lo) | (samples > hi), axis=1)))
            if outside:
                title += f' ({outside} outside the axes)'
        ax.scatter(samples[:, 0], samples[:, 1], s=4, alpha=0.6)
        ax.set_aspect('equal')
        ax.set_title(title)
    else:
        flat = samples.reshape(len(samples), -1)
        im = ax.imshow(flat, aspect='auto', interpolation='nearest', cmap='viridis')
        fig.colorbar(im, ax=ax)
        ax.set_xlabel('feature' if samples.ndim == 2 else 'position x channel')
        ax.set_ylabel('sample')
    fig.tight_layout()
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


# Picture formats by file extension; those this Pillow build cannot write are left out below.
_FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.webp': 'WEBP', '.tif': 'TIFF',
            '.tiff': 'TIFF', '.bmp': 'BMP', '.gif': 'GIF'}
Image.init()
IMAGE_EXTENSIONS = tuple(ext for ext, fmt in _FORMATS.items() if fmt in Image.SAVE)


def image_format(path: str) -> str | None:
    """The Pillow format that a picture file's extension names (case-insensitive).

    Args:
      path: a file name such as samples.jpg.

    Returns:
      'PNG', 'JPEG', ...; None for an extension not in IMAGE_EXTENSIONS.
    """
    ext = os.path.splitext(path)[1].lower()
    return _FORMATS[ext] if ext in IMAGE_EXTENSIONS else None


def save_image(picture: np.ndarray, path: str, format: str | None = None) -> None:  # noqa: A002
    """Writes a uint8 [H, W, C] picture atomically (temporary file, then rename).

    Args:
      picture: uint8 [H, W, 1 or 3].
      path: destination file.
      format: Pillow format; by default the one `path`'s extension names (`image_format`).

    Raises:
      ValueError: for an extension that names no format in IMAGE_EXTENSIONS.
    """
    format = format or image_format(path)
    if format is None:
        raise ValueError(f'{path}: the extension names no picture format; use one of '
                         f'{", ".join(IMAGE_EXTENSIONS)}')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if picture.shape[-1] == 1:
        picture = picture[..., 0]
    # JPEG's default quality (75) smears the pixel-level detail that samples are looked at for.
    options = {'quality': 95} if format in ('JPEG', 'WEBP') else {}
    tmp = path + '.tmp'
    Image.fromarray(picture).save(tmp, format=format, **options)
    os.replace(tmp, path)


def needs_tiff(dtype: np.dtype, channels: int) -> bool:
    """Whether images of this dtype and channel count need TIFF to be written exactly (16-bit
    pixels, or a channel count other than gray or RGB), rather than an 8-bit picture."""
    return np.dtype(dtype) != np.uint8 or channels not in (1, 3)


def save_tiff(images: np.ndarray, path: str) -> None:
    """Writes images in the data's units to one TIFF exactly: every channel, 8 or 16 bits.

    One page per image, its channels as contiguous samples ([H, W, C]; photometric RGB for 3
    channels, else minisblack), so `tifffile.imread(path)` returns `images` (with its axes of
    length 1 dropped: [H, W, C] for one image, [N, H, W] for gray). Written atomically.

    Args:
      images: uint8 or uint16 [N, H, W, C] (e.g. `Scaling.to_data` of generated samples).
      path: destination .tif / .tiff file.

    Raises:
      ValueError: for another dtype or shape.
    """
    import tifffile  # noqa: PLC0415 (only for 16-bit or many-channel data)

    images = np.asarray(images)
    if images.ndim != 4 or images.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'save_tiff takes uint8 / uint16 images [N, H, W, C], got '
                         f'{images.dtype} {images.shape}')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    c = images.shape[-1]
    tmp = path + '.tmp'
    with tifffile.TiffWriter(tmp) as tif:
        for image in images:
            tif.write(image[..., 0] if c == 1 else image,
                      photometric='rgb' if c == 3 else 'minisblack',
                      planarconfig=None if c == 1 else 'contig', metadata=None)
    os.replace(tmp, path)


def save_png(picture: np.ndarray, path: str) -> None:
    """Writes a uint8 [H, W, C] picture as PNG, atomically (temporary file, then rename).

    Args:
      picture: uint8 [H, W, 1 or 3].
      path: destination file.
    """
    save_image(picture, path, 'PNG')


def sample_file_extension(dtype: np.dtype, channels: int) -> str:
    """The file type one sample in the data's units is written as, by its dtype and channels.

    8-bit gray or RGB images are PNG; anything else an image file holds exactly (16-bit pixels,
    other channel counts) is TIFF. Both are what the image_folder source reads back.

    Args:
      dtype: the data's stored dtype (`Scaling.to_data`'s output).
      channels: channels of one image.

    Returns:
      '.png' or '.tif'.
    """
    return '.png' if np.dtype(dtype) == np.uint8 and channels in (1, 3) else '.tif'


def save_sample(image: np.ndarray, stem: str) -> str:
    """Writes one image sample in the data's units (uint8 / uint16 [H, W, C]) without loss, in
    the format `sample_file_extension` picks, atomically.

    Args:
      image: [H, W, C] uint8 or uint16.
      stem: the path without extension.

    Returns:
      The path written (stem + extension).
    """
    path = stem + sample_file_extension(image.dtype, image.shape[-1])
    tmp = path + '.tmp'
    if path.endswith('.png'):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format='PNG')
    else:
        import tifffile  # noqa: PLC0415 (only for 16-bit or many-channel data)
        gray = image.shape[-1] == 1
        tifffile.imwrite(tmp, image[..., 0] if gray else image,
                         photometric='rgb' if image.shape[-1] == 3 else 'minisblack',
                         planarconfig=None if gray else 'contig')
    os.replace(tmp, path)
    return path


def save_samples_folder(samples: np.ndarray, labels: np.ndarray | None,
                        class_names: tuple[str, ...], folder: str) -> list[str]:
    """Writes image samples one file each, in a subfolder per class named by the class, so the
    folder is a dataset for `data.name='image_folder'` (which reads subfolders as classes).

    Args:
      samples: [N, H, W, C] uint8 or uint16, in the data's units (`Scaling.to_data`).
      labels: int [N], the class of each sample (index into class_names); None for an
        unconditional generator: the files then lie in `folder` itself, unlabelled.
      class_names: the run's class names.
      folder: the output folder (created).

    Returns:
      The paths written, in sample order: FOLDER/<class name>/<k>.png (k counts within a class)
      or FOLDER/<k>.png.

    Raises:
      GanjaxError: for a class name that cannot be a folder name (empty, '.', '..', a separator).
    """
    samples = np.asarray(samples)
    for name in (class_names if labels is not None else ()):
        if name in ('', '.', '..') or '/' in name or os.sep in name or name.startswith('.'):
            raise GanjaxError(f'class name {name!r} cannot name a subfolder (image_folder skips '
                              'hidden names); write the samples as .npz instead')
    width = max(5, len(str(len(samples) - 1)))
    counts: dict[str, int] = {}
    paths = []
    for i, image in enumerate(samples):
        sub = '' if labels is None else class_names[int(labels[i])]
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        k = counts.get(sub, 0)
        counts[sub] = k + 1
        paths.append(save_sample(image, os.path.join(folder, sub, f'{k:0{width}d}')))
    return paths
