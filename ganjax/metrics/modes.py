"""Mode-collapse measures for mixtures of Gaussians (the 8-Gaussian ring, the 25-Gaussian grid).

The standard measures of Metz et al. 2017 ("Unrolled GANs"), Srivastava et al. 2017 (VEEGAN) and
Lin et al. 2018 (PacGAN): each sample goes to its nearest mode; it is *high quality* when it lies
within 3 standard deviations of that mode; a mode is *covered* when it receives at least
`min_fraction` of the samples as high-quality samples (1/4 of its share under a uniform spread by
default, so a handful of stray samples does not count as covering it); and the KL divergence of the
histogram of high-quality samples over the modes from the uniform distribution measures how evenly
the modes are covered (0 = perfectly even). With no high-quality sample there is no histogram and
the KL is undefined: it is NaN (kept in eval/history.jsonl, left out of TensorBoard's plots), and
`modes_covered` = 0 and `high_quality` = 0 say what happened.
"""

from __future__ import annotations

import numpy as np

from ganjax.errors import GanjaxError


def mode_statistics(samples, centers, std: float, min_fraction: float | None = None) -> dict:
    """Modes covered, high-quality fraction and KL(mode histogram || uniform).

    Args:
      samples: [n, d] generated points.
      centers: [k, d] the modes' centres.
      std: every mode's standard deviation.
      min_fraction: share of all samples a mode must receive as high-quality samples to count as
        covered (default 0.25 / k).

    Returns:
      {'modes_covered': int, 'num_modes': k, 'high_quality': fraction in [0, 1],
       'kl_to_uniform': float, NaN (undefined) when no sample is high quality, 'counts': [k]
       ints}.
    """
    x = np.asarray(samples, np.float64)
    c = np.asarray(centers, np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0:
        raise GanjaxError(f'mode_statistics: samples {x.shape} and centers {c.shape} must be '
                          '[n, d] and [k, d] with the same d')
    k = len(c)
    min_fraction = 0.25 / k if min_fraction is None else min_fraction
    d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    nearest = np.argmin(d2, axis=1)
    good = np.sqrt(d2[np.arange(len(x)), nearest]) <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=k)
    covered = int(np.sum(counts >= min_fraction * len(x)))
    if counts.sum():
        p = counts / counts.sum()
        nz = p > 0
        kl = float(np.sum(p[nz] * np.log(p[nz] * k)))
    else:
        kl = float('nan')
    return {'modes_covered': covered, 'num_modes': k, 'high_quality': float(np.mean(good)),
            'kl_to_uniform': kl, 'counts': counts.tolist()}
