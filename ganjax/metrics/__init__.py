"""Sample-quality metrics: Fréchet distance (FID), KID, Inception Score, precision/recall,
density/coverage, and the mode-collapse measures of 2D mixtures.

    stats = FeatureStats.empty(d); stats = jax.jit(accumulate)(stats, features)   # per batch
    frechet_distance_from_stats(real_stats, fake_stats)
    kid(real_features, fake_features); precision_recall(real, fake); density_coverage(real, fake)
    conditional_accuracy(logits, labels); per_class_fid(real, real_labels, fake, fake_labels, K)
"""

from ganjax.metrics.conditional import conditional_accuracy, per_class_fid
from ganjax.metrics.modes import mode_statistics
from ganjax.metrics.sample_metrics import (density_coverage, inception_score, kid, knn_radii,
                                           precision_recall)
from ganjax.metrics.stats import (FeatureStats, accumulate, frechet_distance,
                                  frechet_distance_from_stats, mean_and_covariance, merge)

__all__ = [
    'FeatureStats', 'accumulate', 'merge', 'mean_and_covariance', 'frechet_distance',
    'frechet_distance_from_stats', 'kid', 'precision_recall', 'density_coverage',
    'inception_score', 'knn_radii', 'mode_statistics', 'conditional_accuracy', 'per_class_fid',
]
