"""Which way each evaluation metric improves, for choosing the best checkpoint of a run.

Kept apart from the metrics' code (and from `ganjax.evaluate`) so that config validation and the
run directory can name the metrics without importing jax or the evaluator.
"""

import math

#: Every metric an evaluation can report, with the direction in which it improves.
METRIC_GOALS = {
    'fid': 'min', 'kid': 'min', 'precision': 'max', 'recall': 'max', 'density': 'max',
    'coverage': 'max', 'is': 'max', 'modes_covered': 'max', 'high_quality': 'max',
    'kl_to_uniform': 'min',
    # Conditional generators (ganjax.metrics.conditional): the share of samples the data's
    # classifier assigns to their requested class, that classifier's accuracy on real held-out
    # data (constant over a run: the ceiling beside it), and the mean per-class FID.
    # The per-class values fid_class_<k> are reported too but have no goal: the mean chooses.
    'cond_acc': 'max', 'real_acc': 'max', 'fid_per_class': 'min',
    # Expression profiles (ganjax.metrics.expression).
    'gene_mean_corr': 'max', 'gene_mean_err': 'min', 'gene_var_corr': 'max',
    'gene_var_err': 'min', 'zero_share_err': 'min', 'corr_dist': 'min', 'mmd': 'min',
    'w1_gene': 'min', 'rf_auc': 'min', 'tstr_acc': 'max', 'type_mean_corr': 'max',
    'type_mmd': 'min', 'marker_overlap': 'max',
    # DNA sequences (ganjax.metrics.sequence): distances to the held-out sequences' k-mer
    # spectra, GC content, homopolymer runs and motif-hit shares. The per-motif values and the
    # memorisation distances (nn_train_*: larger is not better, noise is far from everything)
    # are reported without a goal.
    'kmer_js_1': 'min', 'kmer_js_2': 'min', 'kmer_js_3': 'min', 'kmer_js_4': 'min',
    'kmer_js_5': 'min', 'kmer_js_6': 'min', 'kmer_js_mean': 'min', 'gc_w1': 'min',
    'homopolymer_js': 'min', 'motif_share_diff_mean': 'min',
}


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` of `metric` improves on `best`.

    Args:
      metric: a key of METRIC_GOALS.
      value: the new value.
      best: the best value so far; None when there is none yet.

    Returns:
      True if `value` is finite and better (None or a non-finite `best` is beaten by any finite
      value; NaN never improves).
    """
    if not math.isfinite(value):
        return False
    if best is None or not math.isfinite(best):
        return True
    return value < best if METRIC_GOALS[metric] == 'min' else value > best
