"""The measures single-cell papers use to compare generated with real expression profiles.

All are computed on log-normalised expression (`Preprocessing.to_log` of the source's values), on
the host (numpy, scipy, scikit-learn): per gene, between genes, between whole profiles, by a
classifier, and within each cell type.

  gene_mean_corr / gene_mean_err   Pearson correlation / mean absolute difference of the genes'
                                   means, generated vs real.
  gene_var_corr / gene_var_err     the same for the genes' variances.
  zero_share_err                   mean over genes of |share of zeros, generated - real|
                                   (a value <= 0 counts as a zero: dropout).
  corr_dist                        mean absolute difference between the gene-gene correlation
                                   matrices (upper triangle).
  mmd                              squared maximum mean discrepancy, RBF kernel with the median
                                   heuristic bandwidth of the real set (unbiased estimate; Gretton
                                   et al. 2012, JMLR 13).
  w1_gene                          1D Wasserstein distance per gene, averaged.
  rf_auc                           area under the ROC curve of a random forest telling real from
                                   generated cells (5-fold cross-validated; 0.5 = they cannot be
                                   told apart), as scGAN reports (Marouf et al. 2020).
For class-conditional generators:
  tstr_acc                         cell-type accuracy on the real cells of a random forest
                                   trained on the generated ones (train on synthetic, test on
                                   real); in the real-vs-real column it is trained on real cells.
  type_mean_corr / type_mmd        gene_mean_corr and mmd within each cell type, averaged over
                                   the types with at least `MIN_TYPE_CELLS` cells on each side.
  marker_overlap                   per type, the share of its top-`MARKERS` marker genes (highest
                                   mean in the type minus mean in the other cells; one per ten
                                   genes for tables of fewer than 100) of the real cells that are
                                   also markers in the generated ones; averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_TYPE_CELLS = 5
MARKERS = 10
_GENERAL = ('gene_mean_corr', 'gene_mean_err', 'gene_var_corr', 'gene_var_err',
            'zero_share_err', 'corr_dist', 'mmd', 'w1_gene', 'rf_auc')
_CONDITIONAL = ('tstr_acc', 'type_mean_corr', 'type_mmd', 'marker_overlap')


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float('nan')


def gene_statistics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Per-gene means, variances and zero shares of two sets of profiles, compared.

    Args:
      real: [n, genes] log expression.
      fake: [m, genes].

    Returns:
      gene_mean_corr, gene_mean_err, gene_var_corr, gene_var_err, zero_share_err.
    """
    mr, mf = real.mean(0), fake.mean(0)
    vr, vf = real.var(0), fake.var(0)
    zr, zf = (real <= 0).mean(0), (fake <= 0).mean(0)
    return {'gene_mean_corr': _pearson(mr, mf), 'gene_mean_err': float(np.abs(mr - mf).mean()),
            'gene_var_corr': _pearson(vr, vf), 'gene_var_err': float(np.abs(vr - vf).mean()),
            'zero_share_err': float(np.abs(zr - zf).mean())}


def correlation_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Mean |corr_real - corr_fake| over gene pairs (a constant gene correlates 0 with all)."""
    def corr(x):
        x = x - x.mean(0)
        std = np.sqrt((x * x).sum(0))
        with np.errstate(invalid='ignore', divide='ignore'):
            c = (x.T @ x) / np.outer(std, std)
        return np.nan_to_num(c)
    iu = np.triu_indices(real.shape[1], k=1)
    return float(np.abs(corr(real.astype(np.float64))[iu] - corr(fake.astype(np.float64))[iu])
                 .mean())


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def rbf_mmd(real: np.ndarray, fake: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with an RBF kernel exp(-|x - y|^2 / (2 h^2)).

    Args:
      real: [n >= 2, d].
      fake: [m >= 2, d].
      bandwidth: h; None = the median distance between the real vectors (median heuristic).

    Returns:
      MMD^2 (may be slightly negative for sets from one distribution: the estimate is unbiased).
    """
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    drr, dff, drf = _sq_dists(real, real), _sq_dists(fake, fake), _sq_dists(real, fake)
    if bandwidth is None:
        off = drr[~np.eye(len(real), dtype=bool)]
        bandwidth = float(np.sqrt(np.median(off))) if off.size else 1.0
    gamma = 1.0 / (2.0 * max(bandwidth, 1e-12) ** 2)
    n, m = len(real), len(fake)
    krr, kff, krf = np.exp(-gamma * drr), np.exp(-gamma * dff), np.exp(-gamma * drf)
    return float((krr.sum() - np.trace(krr)) / (n * (n - 1))
                 + (kff.sum() - np.trace(kff)) / (m * (m - 1)) - 2.0 * krf.mean())


def wasserstein_per_gene(real: np.ndarray, fake: np.ndarray) -> float:
    """Mean over genes of the 1D Wasserstein-1 distance between the two sets' values."""
    from scipy.stats import wasserstein_distance  # noqa: PLC0415

    return float(np.mean([wasserstein_distance(real[:, g], fake[:, g])
                          for g in range(real.shape[1])]))


def classifier_auc(real: np.ndarray, fake: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated ROC AUC of a random forest telling real (1) from generated (0) profiles.

    The larger set is subsampled to the smaller one's size so that chance is 0.5.

    Args:
      real: [n, d].
      fake: [m, d].
      seed: seed of the subsample, the folds and the forest.
      folds: cross-validation folds.

    Returns:
      The AUC (0.5: indistinguishable; 1: always told apart).
    """
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415
    from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    k = min(len(real), len(fake))
    x = np.concatenate([real[rng.permutation(len(real))[:k]], fake[rng.permutation(len(fake))[:k]]])
    y = np.concatenate([np.ones(k), np.zeros(k)])
    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    cv = StratifiedKFold(n_splits=min(folds, k), shuffle=True, random_state=seed)
    scores = cross_val_predict(forest, x, y, cv=cv, method='predict_proba')[:, 1]
    return float(roc_auc_score(y, scores))


def transfer_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                      test_y: np.ndarray, seed: int = 0) -> float:
    """Accuracy on (test_x, test_y) of a random forest trained on (train_x, train_y).

    Train on synthetic, test on real (TSTR) when train_x is generated; the same with real
    training cells gives the ceiling.
    """
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415

    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    forest.fit(train_x, train_y)
    return float(np.mean(forest.predict(test_x) == test_y))


def marker_genes(x: np.ndarray, labels: np.ndarray, k: int, count: int = MARKERS) -> np.ndarray:
    """Indices of the `count` genes whose mean in class k most exceeds their mean elsewhere."""
    inside, outside = x[labels == k], x[labels != k]
    score = inside.mean(0) - (outside.mean(0) if len(outside) else 0.0)
    return np.argsort(-score, kind='stable')[:count]


class ExpressionMetrics:
    """The metrics of this module for a run's expression data (`DomainMetrics`)."""

    def __init__(self, source: Any, seed: int = 0):
        """Args: the held-out `ExpressionSource` (its preprocessing) and the run's seed."""
        self.preprocessing = source.preprocessing
        self.seed = int(seed)

    def names(self, num_classes: int) -> tuple[str, ...]:
        """The general metrics, and the per-type ones for a conditional generator."""
        return _GENERAL + (_CONDITIONAL if num_classes else ())

    def __call__(self, real, real_labels, fake, fake_labels) -> dict[str, float]:
        """All metrics of `fake` against `real` (see the module docstring)."""
        r = self.preprocessing.to_log(np.asarray(real).reshape(len(real), -1))
        f = self.preprocessing.to_log(np.asarray(fake).reshape(len(fake), -1))
        out = gene_statistics(r, f)
        out['corr_dist'] = correlation_distance(r, f)
        out['mmd'] = rbf_mmd(r, f)
        out['w1_gene'] = wasserstein_per_gene(r, f)
        out['rf_auc'] = classifier_auc(r, f, self.seed)
        if fake_labels is not None:
            out.update(self._per_type(r, np.asarray(real_labels), f, np.asarray(fake_labels)))
        return out

    def _per_type(self, r, rl, f, fl) -> dict[str, float]:
        known = rl >= 0
        tstr = (transfer_accuracy(f, fl, r[known], rl[known], self.seed)
                if known.any() and len(np.unique(fl)) > 1 else float('nan'))
        # Markers are ranked against all other cells of the same set, typed or not.
        corr, mmd, overlap = [], [], []
        for k in np.unique(rl[known]):
            rk, fk = r[rl == k], f[fl == k]
            if len(rk) < MIN_TYPE_CELLS or len(fk) < MIN_TYPE_CELLS:
                continue
            corr.append(_pearson(rk.mean(0), fk.mean(0)))
            mmd.append(rbf_mmd(rk, fk))
            # Few genes: fewer markers, or every gene would be one and the overlap always 1.
            count = min(MARKERS, max(1, r.shape[1] // 10))
            shared = np.intersect1d(marker_genes(r, rl, k, count), marker_genes(f, fl, k, count))
            overlap.append(len(shared) / count)
        mean = lambda v: float(np.mean(v)) if v else float('nan')  # noqa: E731
        return {'tstr_acc': tstr, 'type_mean_corr': mean(corr), 'type_mmd': mean(mmd),
                'marker_overlap': mean(overlap)}

    def details(self, real, real_labels, fake, fake_labels, class_names,
                genes=()) -> dict[str, Any]:
        """Per cell type: cell counts, gene_mean_corr, mmd and the marker genes of both sides.

        Args:
          real, real_labels, fake, fake_labels: as `__call__`.
          class_names: names of the label classes.
          genes: gene names, to name the markers (indices without them).

        Returns:
          {'per_type': {type name: {...}}}; empty for an unconditional generator.
        """
        if fake_labels is None:
            return {}
        r = self.preprocessing.to_log(np.asarray(real).reshape(len(real), -1))
        f = self.preprocessing.to_log(np.asarray(fake).reshape(len(fake), -1))
        rl, fl = np.asarray(real_labels), np.asarray(fake_labels)
        count = min(MARKERS, max(1, r.shape[1] // 10))
        name = (lambda j: genes[j]) if len(genes) else int  # noqa: E731
        out = {}
        for k, type_name in enumerate(class_names):
            rk, fk = r[rl == k], f[fl == k]
            row = {'real_cells': int(len(rk)), 'generated_cells': int(len(fk))}
            if len(rk) >= MIN_TYPE_CELLS and len(fk) >= MIN_TYPE_CELLS:
                real_markers = marker_genes(r, rl, k, count)
                fake_markers = marker_genes(f, fl, k, count)
                row.update({
                    'gene_mean_corr': _pearson(rk.mean(0), fk.mean(0)), 'mmd': rbf_mmd(rk, fk),
                    'marker_overlap': len(np.intersect1d(real_markers, fake_markers)) / count,
                    'real_markers': [name(j) for j in real_markers],
                    'generated_markers': [name(j) for j in fake_markers]})
            out[str(type_name)] = row
        return {'per_type': out}

    def figure(self, real, real_labels, fake, fake_labels, class_names, path: str) -> None:
        """Real and generated cells in one PCA (fitted on the real cells), coloured by type.

        Args:
          real, real_labels, fake, fake_labels: as `__call__` (fake_labels None: one colour).
          class_names: names of the label classes.
          path: the PNG to write.
        """
        import matplotlib  # noqa: PLC0415
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt  # noqa: PLC0415

        r = self.preprocessing.to_log(np.asarray(real).reshape(len(real), -1)).astype(np.float64)
        f = self.preprocessing.to_log(np.asarray(fake).reshape(len(fake), -1)).astype(np.float64)
        mean = r.mean(0)
        _, _, vt = np.linalg.svd(r - mean, full_matrices=False)
        pr, pf = (r - mean) @ vt[:2].T, (f - mean) @ vt[:2].T
        fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
        cmap = plt.get_cmap('tab10' if len(class_names) <= 10 else 'tab20')
        for ax, points, labels, title in ((axes[0], pr, real_labels, 'real (held-out)'),
                                          (axes[1], pf, fake_labels, 'generated')):
            ax.scatter(pr[:, 0], pr[:, 1], s=6, c='0.85', label='_real')
            if labels is None or not len(class_names):
                ax.scatter(points[:, 0], points[:, 1], s=8, c='C0')
            else:
                labels = np.asarray(labels)
                for k, name in enumerate(class_names):
                    mask = labels == k
                    if mask.any():
                        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=cmap(k % cmap.N),
                                   label=name)
            ax.set_title(f'{title}, {len(points)} cells')
            ax.set_xlabel('PC 1 (of the real cells)')
        axes[0].set_ylabel('PC 2')
        if len(class_names) and real_labels is not None:
            axes[0].legend(fontsize=7, markerscale=2, loc='best')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
