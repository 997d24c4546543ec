"""Host-side image transforms: channel conversion, center crop and resize (PIL, numpy)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ganjax.errors import ConfigError

_PIL_MODES = {1: 'L', 3: 'RGB', 4: 'RGBA'}


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Converts the channel count of channels-last images.

    Grayscale -> RGB repeats the channel; RGB(A) -> grayscale uses the ITU-R 601-2 luma weights
    (the same as PIL's 'L' conversion); RGBA -> RGB and LA -> L drop the alpha channel.

    Args:
        x: images [..., H, W, C].
        channels: wanted channel count; 0 keeps C.

    Returns:
        Images [..., H, W, channels] with the dtype of x (x itself when nothing changes).

    Raises:
        ConfigError: for a conversion that has no sensible meaning (e.g. 5 channels -> 3).
    """
    have = x.shape[-1]
    if channels in (0, have):
        return x
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if have in (3, 4) and channels == 1:
        rgb = x[..., :3].astype(np.float32)
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            luma = np.clip(np.rint(luma), info.min, info.max)
        return luma.astype(x.dtype)[..., None]
    if have == 4 and channels == 3:
        return x[..., :3]
    if have == 2 and channels == 1:
        return x[..., :1]
    if have == 2 and channels == 3:
        return np.repeat(x[..., :1], 3, axis=-1)
    raise ConfigError(f'cannot convert images with {have} channels to {channels} channels')


def center_crop_square(img: np.ndarray) -> np.ndarray:
    """Returns the largest centered square crop of an image [H, W, C]."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top:top + s, left:left + s]


def _resize_plane(plane: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Resizes one 2-D plane of any numeric dtype through PIL's 32-bit float mode."""
    out = np.asarray(Image.fromarray(plane.astype(np.float32), mode='F').resize((size, size),
                                                                                 resample))
    if np.issubdtype(plane.dtype, np.integer):
        info = np.iinfo(plane.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(plane.dtype)


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Center-crops an image to a square, then resizes it to size x size.

    Shrinking uses Lanczos (PIL antialiases when reducing, so no aliasing); enlarging uses
    bilinear, because Lanczos rings around the sharp strokes of digits and line art.

    Args:
        img: image [H, W, C] (uint8 fast path; other dtypes go channel by channel in float).
        size: output side length, > 0.

    Returns:
        Image [size, size, C] with the dtype of img.
    """
    sq = center_crop_square(img)
    if sq.shape[0] == size:
        return np.ascontiguousarray(sq)
    resample = Image.Resampling.LANCZOS if sq.shape[0] > size else Image.Resampling.BILINEAR
    channels = sq.shape[-1]
    if sq.dtype == np.uint8 and channels in _PIL_MODES:
        mode = _PIL_MODES[channels]
        pil = Image.fromarray(sq[..., 0] if channels == 1 else sq, mode=mode)
        out = np.asarray(pil.resize((size, size), resample))
        return out.reshape(size, size, channels)
    planes = [_resize_plane(sq[..., c], size, resample) for c in range(channels)]
    return np.stack(planes, axis=-1)


def fit_image(img: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """Brings one image [H, W, C] to image_size x image_size x channels (0 = keep native)."""
    have = img.shape[-1]
    # Convert first when it reduces the work of the resize, after when it adds channels.
    if channels and channels < have:
        img = convert_channels(img, channels)
    if image_size and img.shape[:2] != (image_size, image_size):
        img = resize_square(img, image_size)
    if channels and channels > img.shape[-1]:
        img = convert_channels(img, channels)
    return img


def fit_images(images: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """Applies `fit_image` to a stack of images.

    Args:
        images: [N, H, W, C].
        image_size: output side (0 = keep the native size).
        channels: output channel count (0 = keep).

    Returns:
        [N, image_size or H, image_size or W, channels or C] with the dtype of images.
    """
    if not image_size or images.shape[1:3] == (image_size, image_size):
        return convert_channels(images, channels)
    out = [fit_image(img, image_size, channels) for img in images]
    if not out:
        c = channels or images.shape[-1]
        return np.zeros((0, image_size, image_size, c), images.dtype)
    return np.stack(out)


def random_crop_origins(shape: tuple[int, int], size: int, count: int,
                        rng: np.random.Generator) -> list[tuple[int, int]]:
    """Corners (top, left) of `count` uniformly random size x size crops of an [H, W] image.

    Args:
        shape: (H, W), each >= size.
        size: side of the crops.
        count: how many.
        rng: the generator to draw from (seeded by the caller, per image).

    Returns:
        A list of (top, left).
    """
    h, w = shape
    tops = rng.integers(0, h - size + 1, count)
    lefts = rng.integers(0, w - size + 1, count)
    return [(int(t), int(left)) for t, left in zip(tops, lefts)]


def tile_origins(shape: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Corners (top, left) of the non-overlapping size x size tiles of an [H, W] image.

    The floor(H / size) x floor(W / size) grid is centred, so the border left over is split
    between the two sides; the tiles are in row-major order.

    Args:
        shape: (H, W), each >= size.
        size: side of the tiles.

    Returns:
        A list of (top, left).
    """
    h, w = shape
    top0, left0 = (h % size) // 2, (w % size) // 2
    return [(top0 + r * size, left0 + c * size)
            for r in range(h // size) for c in range(w // size)]
