"""Metrics of class-conditional generators: conditional accuracy and per-class FID.

Conditional accuracy is the share of samples generated for class k that a classifier of the data
assigns to class k (the "classification accuracy" of conditional GANs, e.g. Odena et al. 2017,
"Conditional image synthesis with auxiliary classifier GANs", arXiv:1610.09585, and Shmelkov et
al. 2018, "How good is my GAN?", arXiv:1807.09499). It is read beside the same classifier's
accuracy on real held-out data, the ceiling a generator is measured against.

Per-class FID is the Fréchet distance (Heusel et al. 2017, arXiv:1706.08500) of each class's
samples against the real examples of that class ("intra-FID", Miyato & Koyama 2018,
arXiv:1802.05637). Each class gets about 1/K of the samples, and FID's bias grows as the sample
count falls (Chong & Forsyth 2020, arXiv:1911.07023): compare per-class values only at the same
sample count, and beside the real-vs-real value at that count.
"""

from __future__ import annotations

import numpy as np

from ganjax.metrics.stats import frechet_distance


def conditional_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The share of examples whose highest logit is their label.

    Args:
      logits: [N, K] class scores (logits or probabilities: only their argmax is read).
      labels: int [N], the class each example was generated for (or, for real data, its class);
        examples labelled -1 (unlabelled) are left out.

    Returns:
      The accuracy in [0, 1]; NaN when no example has a label.
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f'conditional_accuracy: logits {logits.shape} and labels {labels.shape} '
                         'are not [N, K] and [N]')
    known = labels >= 0
    if not np.any(known):
        return float('nan')
    return float(np.mean(np.argmax(logits[known], axis=-1) == labels[known]))


def per_class_fid(real_features: np.ndarray, real_labels: np.ndarray,
                  fake_features: np.ndarray, fake_labels: np.ndarray,
                  num_classes: int) -> np.ndarray:
    """The Fréchet distance of each class's fake features against the real features of that
    class (intra-FID), in float64.

    Args:
      real_features: [N, d] features of real examples.
      real_labels: int [N], their classes (-1: unlabelled, left out).
      fake_features: [M, d] features of generated samples.
      fake_labels: int [M], the class each sample was generated for.
      num_classes: K.

    Returns:
      float64 [K]; NaN for a class with fewer than 2 examples on either side (no covariance).
    """
    real_features = np.asarray(real_features, np.float64)
    fake_features = np.asarray(fake_features, np.float64)
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    out = np.full((num_classes,), np.nan)
    for k in range(num_classes):
        real, fake = real_features[real_labels == k], fake_features[fake_labels == k]
        if len(real) < 2 or len(fake) < 2:
            continue
        # atleast_2d: np.cov of one feature is a scalar.
        out[k] = frechet_distance(real.mean(axis=0), np.atleast_2d(np.cov(real, rowvar=False)),
                                  fake.mean(axis=0), np.atleast_2d(np.cov(fake, rowvar=False)))
    return out

