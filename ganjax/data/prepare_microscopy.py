"""Writes the microscopy images that scikit-image bundles into image folders, for
configs/microscopy_crops.py:

    pip install 'ganjax[microscopy]'      # scikit-image; its wheel holds these images
    python -m ganjax.data.prepare_microscopy --out data/microscopy

Each image is cut into a grid of fields (2 x 2 by default), one PNG per field, so that the
image_folder source can hold whole fields out for evaluation (its train/eval split is over files,
and crops are drawn within a file). Nothing is downloaded: both images are in scikit-image's
wheel (skimage/data/ihc.png and cell.png). A README.md beside them says where they come from and
under which terms.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Callable

import numpy as np
from PIL import Image

from ganjax.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class Bundled:
    """One image of scikit-image's bundled data, with what its README must say."""
    loader: str  # the function of skimage.data
    title: str
    credit: str
    terms: str


BUNDLED = {
    'ihc': Bundled(
        'immunohistochemistry',
        'Immunohistochemistry (IHC) of colonic glands, 512 x 512 RGB, 8-bit',
        'IHC staining of the FHL2 protein (revealed with DAB) with hematoxylin counterstaining; '
        'acquired at the Center for Microscopy And Molecular Imaging (CMMI). Distributed with '
        'scikit-image as skimage/data/ihc.png (`skimage.data.immunohistochemistry()`).',
        'No known copyright restrictions (scikit-image\'s docstring of '
        '`skimage.data.immunohistochemistry`).'),
    'cell': Bundled(
        'cell',
        'Cell floating in saline: quantitative phase image, 660 x 550 grayscale, 8-bit',
        'Quantitative phase image retrieved from a digital hologram with the Python library '
        'qpformat; from P. Mueller, M. Schuermann, S. Girardo, G. Cojoc and J. Guck, "Accurate '
        'evaluation of size and refractive index for spherical objects in quantitative phase '
        'imaging", Optics Express 26(8): 10729-10743 (2018), doi:10.1364/OE.26.010729. '
        'Distributed with scikit-image as skimage/data/cell.png (`skimage.data.cell()`).',
        'CC0 1.0, dedicated to the public domain (scikit-image\'s docstring of '
        '`skimage.data.cell`).'),
}


def load_bundled(name: str) -> np.ndarray:
    """Loads one of BUNDLED from the installed scikit-image (no download).

    Args:
        name: a key of BUNDLED.

    Returns:
        uint8 [H, W] or [H, W, 3].

    Raises:
        ConfigError: when scikit-image is not installed.
    """
    try:
        import skimage  # noqa: PLC0415 (an optional extra)
        import skimage.data  # noqa: PLC0415
    except ImportError:
        raise ConfigError("preparing the microscopy images needs scikit-image: pip install "
                          "'ganjax[microscopy]' (or scikit-image>=0.22)") from None
    return np.asarray(getattr(skimage.data, BUNDLED[name].loader)())


def fields(image: np.ndarray, grid: tuple[int, int]) -> list[np.ndarray]:
    """Cuts an image into a rows x columns grid of equal fields (the remainder is dropped).

    Args:
        image: [H, W] or [H, W, C].
        grid: (rows, columns).

    Returns:
        The fields in row-major order.
    """
    rows, cols = grid
    h, w = image.shape[0] // rows, image.shape[1] // cols
    return [image[r * h:(r + 1) * h, c * w:(c + 1) * w] for r in range(rows) for c in range(cols)]


def prepare(out: str, grid: tuple[int, int] = (2, 2), names: tuple[str, ...] = tuple(BUNDLED),
            load: Callable[[str], np.ndarray] = load_bundled) -> dict[str, list[str]]:
    """Writes each bundled image as a folder of field PNGs, with a README.md of attributions.

    Args:
        out: the folder to write into (OUT/<name>/field_<k>.png, OUT/README.md).
        grid: (rows, columns) of fields per image.
        names: which of BUNDLED to write.
        load: name -> uint8 image (the bundled scikit-image data; tests pass their own).

    Returns:
        {name: paths written}.

    Raises:
        ConfigError: for an unknown name or a bad grid, or without scikit-image.
        DataError: for an image that is not 8-bit gray or RGB.
    """
    unknown = [n for n in names if n not in BUNDLED]
    if unknown:
        raise ConfigError(f'unknown bundled image(s) {unknown}; choose from {sorted(BUNDLED)}')
    if len(grid) != 2 or min(grid) < 1:
        raise ConfigError(f'--grid must be two positive integers (rows, columns), got {grid}')
    written = {}
    for name in names:
        image = np.asarray(load(name))
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise DataError(f'bundled image {name!r}: expected 8-bit gray or RGB, got '
                            f'{image.dtype} {image.shape}')
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        paths = []
        for k, field in enumerate(fields(image, grid)):
            path = os.path.join(folder, f'field_{k:02d}.png')
            Image.fromarray(np.ascontiguousarray(field)).save(path)
            paths.append(path)
        written[name] = paths
    with open(os.path.join(out, 'README.md'), 'w', encoding='utf-8') as f:
        f.write(_readme(written, grid))
    return written


def _readme(written: dict[str, list[str]], grid: tuple[int, int]) -> str:
    lines = ['# Microscopy images bundled with scikit-image', '',
             'Written by `python -m ganjax.data.prepare_microscopy` for '
             '`configs/microscopy_crops.py`: each image cut into a '
             f'{grid[0]} x {grid[1]} grid of fields, one PNG per field (field_00 is the top left, '
             'row-major), so that whole fields can be held out for evaluation. The pixels are '
             "scikit-image's, unchanged.", '']
    for name, paths in written.items():
        item = BUNDLED[name]
        lines += [f'## {name}/ ({len(paths)} fields)', '', f'{item.title}.', '',
                  f'Source: {item.credit}', '', f'Terms: {item.terms}', '']
    lines += ['scikit-image itself is distributed under the BSD 3-Clause licence '
              '(https://github.com/scikit-image/scikit-image/blob/main/LICENSE.txt).', '']
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m ganjax.data.prepare_microscopy --out data/microscopy`."""
    parser = argparse.ArgumentParser(
        prog='python -m ganjax.data.prepare_microscopy',
        description="Writes scikit-image's bundled microscopy images into image folders.")
    parser.add_argument('--out', default='data/microscopy', help='output folder')
    parser.add_argument('--grid', type=int, nargs=2, default=(2, 2), metavar=('ROWS', 'COLS'),
                        help='fields per image (rows, columns)')
    parser.add_argument('--images', nargs='+', default=list(BUNDLED), choices=sorted(BUNDLED))
    args = parser.parse_args(argv)
    try:
        written = prepare(args.out, tuple(args.grid), tuple(args.images))
    except (ConfigError, DataError) as e:
        print(f'prepare_microscopy: error: {e}', file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    for name, paths in written.items():
        print(f'wrote {len(paths)} fields of {name} to {os.path.join(args.out, name)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
