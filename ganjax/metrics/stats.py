"""Feature statistics accumulated inside `jit`, and the Fréchet distance computed from them.

`FeatureStats` holds (count, shift, sum, sum of outer products) of feature vectors. `accumulate`
is a pure function of arrays, so a whole evaluation (generate a batch, extract features, add them)
compiles into one program, and when the features are sharded over a device mesh the batch sums
are global sums (XLA inserts the all-reduce). The sums are of `features - shift`, where `shift` is
the first batch's mean: the covariance is then computed from centred sums, which keeps float32
accumulation accurate over tens of thousands of samples (no large mean cancelling out).

The Fréchet distance is computed on the host in float64, with the matrix square root through
symmetric eigendecompositions, which is stable for singular (rank-deficient) covariances.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ganjax.errors import GanjaxError


@flax.struct.dataclass
class FeatureStats:
    """Running statistics of d-dimensional feature vectors (a pytree of arrays).

    Attributes:
      count: number of vectors added (float32 scalar).
      shift: the vector subtracted before summing (the first batch's mean).
      sum: sum of (x - shift), [d].
      outer: sum of (x - shift)(x - shift)^T, [d, d].
    """

    count: jax.Array
    shift: jax.Array
    sum: jax.Array
    outer: jax.Array

    @classmethod
    def empty(cls, dim: int) -> FeatureStats:
        """Statistics of no vectors, of dimension `dim`."""
        return cls(count=jnp.zeros((), jnp.float32), shift=jnp.zeros((dim,), jnp.float32),
                   sum=jnp.zeros((dim,), jnp.float32), outer=jnp.zeros((dim, dim), jnp.float32))


def accumulate(stats: FeatureStats, features: jax.Array) -> FeatureStats:
    """Adds a batch of feature vectors to `stats` (pure; use inside `jit`).

    Args:
      stats: the statistics so far.
      features: [B, d] (any float dtype; accumulated in float32).

    Returns:
      The updated statistics.
    """
    x = features.astype(jnp.float32).reshape(features.shape[0], -1)
    # The first batch fixes the shift; later batches keep it.
    shift = jnp.where(stats.count > 0, stats.shift, jnp.mean(x, axis=0))
    c = x - shift
    return FeatureStats(count=stats.count + x.shape[0], shift=shift,
                        sum=stats.sum + jnp.sum(c, axis=0),
                        outer=stats.outer + jnp.einsum('bi,bj->ij', c, c,
                                                       precision=jax.lax.Precision.HIGHEST))


def merge(a: FeatureStats, b: FeatureStats) -> FeatureStats:
    """Statistics of the union of two sets (e.g. from two processes), moved to `a`'s shift."""
    d = b.shift - a.shift
    n_b = b.count
    return FeatureStats(count=a.count + n_b, shift=a.shift, sum=a.sum + b.sum + n_b * d,
                        outer=a.outer + b.outer + jnp.outer(b.sum, d) + jnp.outer(d, b.sum) +
                        n_b * jnp.outer(d, d))


def mean_and_covariance(stats: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the unbiased covariance, in float64 on the host.

    Raises:
      GanjaxError: fewer than two vectors.
    """
    n = float(jax.device_get(stats.count))
    if n < 2:
        raise GanjaxError(f'feature statistics of {n:.0f} vector(s): at least 2 are needed for a '
                          'covariance')
    shift, s, outer = (np.asarray(jax.device_get(v), np.float64)
                       for v in (stats.shift, stats.sum, stats.outer))
    mean_c = s / n
    cov = (outer - n * np.outer(mean_c, mean_c)) / (n - 1)
    return shift + mean_c, (cov + cov.T) / 2


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (Dowson & Landau 1982); with
    Inception features this is FID (Heusel et al. 2017, arXiv:1706.08500).

    ||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)), in float64. The trace of the
    square root is computed as tr((S1 cov2 S1)^(1/2)) with S1 = cov1^(1/2): the same eigenvalues,
    but a symmetric PSD matrix, so singular covariances need no regularising offset.

    Args:
      mu1, cov1: mean [d] and covariance [d, d] of the first distribution.
      mu2, cov2: those of the second.

    Returns:
      The distance (>= 0 up to rounding).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise GanjaxError(f'frechet_distance: shapes {mu1.shape}, {cov1.shape}, {mu2.shape}, '
                          f'{cov2.shape} do not describe two distributions of one dimension')
    s1 = _psd_sqrt(cov1)
    w = np.linalg.eigvalsh((s1 @ cov2 @ s1 + (s1 @ cov2 @ s1).T) / 2)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(w, 0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """`frechet_distance` of the Gaussians fitted to two sets of accumulated features."""
    return frechet_distance(*mean_and_covariance(a), *mean_and_covariance(b))
