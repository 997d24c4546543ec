"""Metrics of two sets of feature vectors: KID, precision/recall, density/coverage, and the
Inception Score of class probabilities.

Distances and kernels are computed with jitted JAX functions over row chunks (memory grows with
chunk x set size, not set size squared); the small reductions at the end are in float64 numpy.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.errors import GanjaxError

_HIGHEST = jax.lax.Precision.HIGHEST


def _as_features(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[0] < 2:
        raise GanjaxError(f'{name} must be [n >= 2, d] feature vectors, got shape {x.shape}')
    if not np.all(np.isfinite(x)):
        raise GanjaxError(f'{name} holds NaN or infinite features')
    return x


@jax.jit
def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    aa = jnp.sum(a * a, axis=1)[:, None]
    bb = jnp.sum(b * b, axis=1)[None, :]
    return jnp.maximum(aa + bb - 2.0 * jnp.matmul(a, b.T, precision=_HIGHEST), 0.0)


@functools.partial(jax.jit, static_argnames='k')
def _kth_smallest(d: jax.Array, k: int) -> jax.Array:
    return -jax.lax.top_k(-d, k)[0][:, -1]


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def knn_radii(x: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (the k-NN ball radius)."""
    if not 1 <= k < x.shape[0]:
        raise GanjaxError(f'k={k} nearest neighbours need more than k vectors, got {x.shape[0]}')
    xj = jnp.asarray(x)
    # k + 1: each vector is its own nearest neighbour, at distance 0.
    out = [np.asarray(_kth_smallest(_sq_dists(xj[s], xj), k + 1)) for s in _chunks(len(x), chunk)]
    return np.sqrt(np.concatenate(out).astype(np.float64))


def _ball_membership(points: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                     chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """For each point, how many balls (centre, radius) hold it; for each centre, whether any
    point lies in its ball."""
    cj, r2 = jnp.asarray(centres), jnp.asarray(radii.astype(np.float32) ** 2)
    counts, covered = [], np.zeros(len(centres), bool)
    for s in _chunks(len(points), chunk):
        inside = _sq_dists(jnp.asarray(points[s]), cj) <= r2[None, :]
        counts.append(np.asarray(jnp.sum(inside, axis=1)))
        covered |= np.asarray(jnp.any(inside, axis=0))
    return np.concatenate(counts), covered


def precision_recall(real, fake, k: int = 3, chunk: int = 1024) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991).

    Precision: the fraction of fake vectors inside the k-NN ball of at least one real vector (the
    real manifold); recall: the fraction of real vectors inside the fake manifold.

    Args:
      real: [n, d] features of real examples.
      fake: [m, d] features of generated examples.
      k: neighbourhood size (the paper uses 3).
      chunk: rows per distance block.

    Returns:
      {'precision': ..., 'recall': ...} in [0, 1].
    """
    real, fake = _as_features(real, 'real'), _as_features(fake, 'fake')
    fake_in_real, _ = _ball_membership(fake, real, knn_radii(real, k, chunk), chunk)
    real_in_fake, _ = _ball_membership(real, fake, knn_radii(fake, k, chunk), chunk)
    return {'precision': float(np.mean(fake_in_real > 0)),
            'recall': float(np.mean(real_in_fake > 0))}


def density_coverage(real, fake, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020, arXiv:2002.09797).

    Density: how many real k-NN balls hold each fake vector, over k, averaged (1 when fakes are
    distributed like reals; it exceeds 1 where fakes crowd dense regions). Coverage: the fraction
    of real vectors whose k-NN ball holds at least one fake vector.

    Args:
      real: [n, d] features of real examples.
      fake: [m, d] features of generated examples.
      k: neighbourhood size (the paper uses 5).
      chunk: rows per distance block.

    Returns:
      {'density': ..., 'coverage': ...}.
    """
    real, fake = _as_features(real, 'real'), _as_features(fake, 'fake')
    counts, covered = _ball_membership(fake, real, knn_radii(real, k, chunk), chunk)
    return {'density': float(np.sum(counts) / (k * len(fake))),
            'coverage': float(np.mean(covered))}


@jax.jit
def _mmd2_unbiased(x: jax.Array, y: jax.Array) -> jax.Array:
    d = x.shape[1]
    kernel = lambda a, b: (jnp.matmul(a, b.T, precision=_HIGHEST) / d + 1.0) ** 3
    m = x.shape[0]
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    off = lambda k: (jnp.sum(k) - jnp.trace(k)) / (m * (m - 1))
    return off(kxx) + off(kyy) - 2.0 * jnp.mean(kxy)


def kid(real, fake, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> dict[str, float]:
    """Kernel Inception Distance (Binkowski et al. 2018, arXiv:1801.01401).

    The unbiased estimate of MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3,
    on `num_subsets` random subsets of `subset_size` vectors from each set (without replacement
    within a subset); mean and standard deviation over the subsets.

    Args:
      real: [n, d] features of real examples.
      fake: [m, d] features of generated examples.
      num_subsets: number of subsets.
      subset_size: vectors per subset (capped at the smaller set's size).
      seed: seed of the subset choice.

    Returns:
      {'kid': mean, 'kid_std': standard deviation}.
    """
    real, fake = _as_features(real, 'real'), _as_features(fake, 'fake')
    if real.shape[1] != fake.shape[1]:
        raise GanjaxError(f'real and fake features differ in dimension: {real.shape[1]} and '
                          f'{fake.shape[1]}')
    m = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        xs = real[rng.choice(len(real), m, replace=False)]
        ys = fake[rng.choice(len(fake), m, replace=False)]
        values.append(float(_mmd2_unbiased(jnp.asarray(xs), jnp.asarray(ys))))
    return {'kid': float(np.mean(values)), 'kid_std': float(np.std(values))}


def inception_score(probs, splits: int = 10) -> dict[str, float]:
    """Inception Score (Salimans et al. 2016, arXiv:1606.03498): exp(E_x KL(p(y|x) || p(y))).

    Args:
      probs: [n, classes] class probabilities of generated examples (rows sum to 1).
      splits: the examples are cut into this many equal parts; mean and std over them.

    Returns:
      {'is': mean, 'is_std': standard deviation}.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise GanjaxError(f'inception_score needs [n >= splits={splits}, classes] probabilities, '
                          f'got shape {p.shape}')
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise GanjaxError('inception_score: rows of probs must be probability vectors')
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(np.clip(part, 1e-12, None)) -
                            np.log(np.clip(marginal, 1e-12, None))), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return {'is': float(np.mean(scores)), 'is_std': float(np.std(scores))}
