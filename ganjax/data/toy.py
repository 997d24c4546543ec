"""2-D mixtures of Gaussians, the usual mode-collapse probes.

'ring8' (8 modes on a circle of radius 2, std 0.02) follows Metz et al. 2017, "Unrolled Generative
Adversarial Networks"; 'grid25' (a 5x5 grid at -4, -2, 0, 2, 4, std 0.05) follows Dumoulin et al.
2017 / Srivastava et al. 2017 (VEEGAN).

Examples are an infinite stream presented as a large virtual dataset: example i is a pure function
of (data.split_seed, split, i), computed with a vectorised counter-based hash (SplitMix64), so
any batch of indices is produced in one numpy pass and is identical across processes and runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganjax.data import source as source_lib
from ganjax.data.scaling import Scaling

# 2^20 examples per "epoch": large enough that epochs do not matter, small enough that the
# iterator's per-epoch permutation stays cheap (8 MiB).
VIRTUAL_SIZE = 1 << 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STREAMS = {'train': 1, 'eval': 2}


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele et al. 2014): a bijective, well-mixed uint64 hash."""
    with np.errstate(over='ignore'):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _uniforms(key: int, indices: np.ndarray, count: int) -> np.ndarray:
    """Returns `count` independent U[0, 1) float64 draws per index, shape [count, n]."""
    base = _splitmix64(np.array([key], np.uint64))[0]
    idx = indices.astype(np.uint64)
    out = np.empty((count, len(idx)), np.float64)
    with np.errstate(over='ignore'):
        for j in range(count):
            h = _splitmix64(base ^ _splitmix64(idx * np.uint64(count) + np.uint64(j) + _GOLDEN))
            out[j] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out


def ring8_centers() -> np.ndarray:
    """The 8 modes of 'ring8': radius 2, angles 2*pi*k/8, float32 [8, 2]."""
    angles = 2 * np.pi * np.arange(8) / 8
    return (2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def grid25_centers() -> np.ndarray:
    """The 25 modes of 'grid25': (i, j) for i, j in {-4, -2, 0, 2, 4}, row-major.

    Returns:
        float32 [25, 2]; mode k = 5 * a + b sits at (ticks[a], ticks[b]).
    """
    ticks = np.arange(-4, 5, 2, dtype=np.float32)
    xx, yy = np.meshgrid(ticks, ticks, indexing='ij')
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


class MixtureSource:
    """An isotropic Gaussian mixture with equal weights, deterministic per index.

    Attributes:
        centers: the modes, float32 [K, 2].
        std: standard deviation of every mode.
        data_shape: (2,).
        dtype: float32.
        num_classes: K; an example's label is the index of the mode it was drawn from.
        description: one line for logs.
        scaling: identity: the points are already in the model's units.
        domain: 'mixture': evaluations add the mode statistics (`ganjax.metrics.domains`).
    """

    domain = 'mixture'

    def __init__(self, name: str, centers: np.ndarray, std: float, seed: int, split: str,
                 size: int = VIRTUAL_SIZE):
        """Creates the source.

        Args:
            name: dataset name for the description.
            centers: modes [K, D].
            std: standard deviation of each mode.
            seed: data.split_seed; with the split it selects the stream of examples.
            split: 'train' or 'eval' (separate streams, so eval never repeats train examples).
            size: virtual number of examples.
        """
        source_lib.check_split(split)
        self.centers = np.asarray(centers, np.float32)
        self.std = float(std)
        self.data_shape = (self.centers.shape[1],)
        self.dtype = np.dtype(np.float32)
        self.scaling = Scaling.identity(self.dtype)
        self.num_classes = len(self.centers)
        self._size = int(size)
        self._key = int(seed) * 4 + _STREAMS[split]
        self.description = (f'{name} {split}: {self.num_classes}-mode Gaussian mixture in '
                            f'{self.data_shape[0]}-D, std {self.std}, '
                            f'{self._size} virtual examples')

    def __len__(self) -> int:
        """Returns the virtual number of examples."""
        return self._size

    def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Returns {'x': float32 [n, 2], 'label': int32 [n]}, a pure function of the indices.

        Args:
            indices: integer indices in [0, len(self)).

        Returns:
            The batch dict.
        """
        idx = source_lib.check_indices(indices, len(self))
        dim = self.data_shape[0]
        # One draw picks the mode, then Box-Muller turns pairs of draws into normals.
        pairs = (dim + 1) // 2
        u = _uniforms(self._key, idx, 1 + 2 * pairs)
        label = np.minimum((u[0] * self.num_classes).astype(np.int64), self.num_classes - 1)
        normals = []
        for p in range(pairs):
            radius = np.sqrt(-2.0 * np.log1p(-u[1 + 2 * p]))
            theta = 2.0 * np.pi * u[2 + 2 * p]
            normals += [radius * np.cos(theta), radius * np.sin(theta)]
        noise = np.stack(normals[:dim], axis=1)
        x = self.centers[label] + self.std * noise
        return {'x': x.astype(np.float32), 'label': label.astype(np.int32)}

    def __repr__(self) -> str:
        return f'MixtureSource({self.description})'


def build_ring8(config: Any, split: str) -> MixtureSource:
    """Builds 'ring8': 8 Gaussians on a ring of radius 2, std 0.02.

    Args:
        config: the data config (uses data.split_seed).
        split: 'train' or 'eval'.

    Returns:
        A `MixtureSource` of float32 [2] points labelled with their mode index.
    """
    _, seed = source_lib.holdout_options(config)
    return MixtureSource('ring8', ring8_centers(), 0.02, seed, split)


def build_grid25(config: Any, split: str) -> MixtureSource:
    """Builds 'grid25': 25 Gaussians on a 5x5 grid at -4, -2, 0, 2, 4, std 0.05.

    Args:
        config: the data config (uses data.split_seed).
        split: 'train' or 'eval'.

    Returns:
        A `MixtureSource` of float32 [2] points labelled with their mode index.
    """
    _, seed = source_lib.holdout_options(config)
    return MixtureSource('grid25', grid25_centers(), 0.05, seed, split)
