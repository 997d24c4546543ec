"""Metrics of DNA sequences (the 'sequence' domain of `ganjax.metrics.domains`).

Every metric decodes its sequences first: the most probable base at each position (one-hot
data decodes exactly; an all-zero padding row is 'no base' and is left out of k-mers, runs and
motif windows). Distances compare a scored set (generated, or real for the floor) with the
held-out sequences:

    kmer_js_<k>, k = 1..6   Jensen-Shannon distance (base 2, in [0, 1]) between the k-mer
                            spectra (all overlapping k-mers of all sequences); kmer_js_mean.
    gc_w1                   1-Wasserstein distance between the per-sequence GC-content
                            distributions.
    homopolymer_js          JS distance between the distributions of homopolymer run lengths
                            (maximal runs of one base; runs of 10 or more pooled).
    motif_<name>_share      share of the scored sequences with a hit of the motif on either
                            strand: a PWM log-odds score (log2, uniform background, `pwm`) of at
                            least RELATIVE_THRESHOLD (0.8) of the way from the lowest to the
                            highest possible score.
    motif_<name>_share_diff |share - the held-out share|; motif_share_diff_mean over motifs.
    motif_<name>_pos_js     JS distance between where the best hits of the two sets start.
    nn_train_hamming        memorisation: mean over the scored sequences of the Hamming distance
                            (as a fraction of the length) to the nearest training sequence (among
                            up to MAX_TRAIN_NEIGHBOURS of them);
                            nn_train_copies the share at distance 0; nn_train_hamming_heldout
                            the same mean for the held-out sequences (what an unmemorised
                            generator should show). For the real-vs-real floor the scored set is
                            training data, so it is 0 there by construction.

Motifs: data.seq_motifs (JASPAR matrix IDs, read from pyjaspar's bundled database), else those of
the `planted.json` beside the FASTA file (the default synthetic data), else none.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ganjax.data.fasta import decode

#: k of the k-mer spectra.
KMER_SIZES = (1, 2, 3, 4, 5, 6)
#: A hit scores at least this far (0 = lowest, 1 = highest possible score) along the motif's range.
RELATIVE_THRESHOLD = 0.8
#: Pseudocount added to every PFM cell, as a share of the column's total count.
PSEUDOCOUNT = 0.01
#: Homopolymer runs this long or longer are pooled in one bin.
MAX_RUN = 10
#: The memorisation distance looks among at most this many training sequences (a seeded random
#: subset of a larger split), which bounds its memory and time.
MAX_TRAIN_NEIGHBOURS = 50_000


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2) of two histograms.

    Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory 1991;
    Endres and Schindelin 2003 for the square root being a metric.

    Args:
        p, q: non-negative counts of the same shape (normalised here).

    Returns:
        The distance in [0, 1]; NaN when either is all zero.
    """
    p = np.asarray(p, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    if p.sum() <= 0 or q.sum() <= 0:
        return float('nan')
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a):
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))
    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between two 1D empirical distributions (integral of |F_a - F_b|)."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    values = np.concatenate([a, b])
    values.sort()
    cdf_a = np.searchsorted(a, values[:-1], side='right') / len(a)
    cdf_b = np.searchsorted(b, values[:-1], side='right') / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(values)))


def kmer_spectrum(idx: np.ndarray, k: int) -> np.ndarray:
    """Counts of every k-mer over all overlapping windows of base-index sequences.

    Args:
        idx: int base indices [N, L] (0..3; -1 for no base: windows holding one are left out).
        k: the k-mer size.

    Returns:
        int64 counts [4**k], k-mers numbered in base 4 with the first base most significant.
    """
    idx = np.asarray(idx)
    if idx.shape[1] < k:
        return np.zeros(4 ** k, np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(idx, k, axis=1).reshape(-1, k)
    windows = windows[np.all(windows >= 0, axis=1)].astype(np.int64)
    codes = windows @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))
    return np.bincount(codes, minlength=4 ** k)


def gc_content(idx: np.ndarray) -> np.ndarray:
    """Share of G and C among the bases of each sequence, float64 [N]."""
    idx = np.asarray(idx)
    bases = np.maximum((idx >= 0).sum(1), 1)
    return ((idx == 1) | (idx == 2)).sum(1) / bases


def homopolymer_runs(idx: np.ndarray, max_run: int = MAX_RUN) -> np.ndarray:
    """Histogram of the lengths of maximal single-base runs; bin r - 1 holds runs of r bases.

    Args:
        idx: base indices [N, L] (-1 breaks a run and is no run itself).
        max_run: runs of this length or more share the last bin.

    Returns:
        int64 counts [max_run].
    """
    idx = np.asarray(idx, np.int16)
    n, length = idx.shape
    # A run starts where the base differs from the previous one (or at position 0).
    change = np.ones((n, length + 1), bool)
    change[:, 1:length] = idx[:, 1:] != idx[:, :-1]
    starts = [np.flatnonzero(row) for row in change]
    counts = np.zeros(max_run, np.int64)
    for row, s in zip(idx, starts):
        runs = np.diff(s)
        runs = runs[row[s[:-1]] >= 0]
        np.add.at(counts, np.minimum(runs, max_run) - 1, 1)
    return counts


def pwm(counts: np.ndarray, pseudocount: float = PSEUDOCOUNT) -> np.ndarray:
    """Log-odds position weight matrix (log2, uniform background) of a PFM.

    Each column gets `pseudocount` times its total count added to every base before it is
    normalised (so matrices of counts and of frequencies give the same PWM).

    Args:
        counts: PFM [w, 4] (A, C, G, T).
        pseudocount: per-base pseudocount, as a share of the column total.

    Returns:
        float64 [w, 4] scores log2(p / 0.25).
    """
    counts = np.asarray(counts, np.float64)
    totals = counts.sum(1, keepdims=True)
    probs = (counts + pseudocount * totals) / (totals * (1 + 4 * pseudocount))
    return np.log2(probs / 0.25)


def pwm_scores(idx: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scores of a PWM at every start on both strands of base-index sequences.

    Args:
        idx: base indices [N, L] (-1: no base; a window holding one scores -inf).
        weights: PWM [w, 4].

    Returns:
        float64 [2, N, L - w + 1]: forward strand, then the reverse complement (the motif's
        reverse complement scored on the forward sequence, start = leftmost base).
    """
    idx = np.asarray(idx)
    w = len(weights)
    n, length = idx.shape
    if length < w:
        return np.full((2, n, 0), -np.inf)
    rc = weights[::-1, ::-1]  # complement: A<->T, C<->G is the reversed base axis
    starts = length - w + 1
    out = np.zeros((2, n, starts))
    gather = np.where(idx < 0, 4, idx)
    for s, matrix in enumerate((weights, rc)):
        ext = np.concatenate([matrix, np.full((w, 1), -np.inf)], axis=1)
        for j in range(w):
            out[s] += ext[j][gather[:, j:j + starts]]
    return out


def motif_hits(idx: np.ndarray, weights: np.ndarray,
               relative: float = RELATIVE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Whether each sequence has a hit of a PWM, and where its best one starts.

    Args:
        idx: base indices [N, L].
        weights: PWM [w, 4].
        relative: threshold as a share of the way from the lowest to the highest possible score.

    Returns:
        (bool [N] hit, int [N] start of the best-scoring window on either strand).
    """
    lo, hi = weights.min(1).sum(), weights.max(1).sum()
    scores = pwm_scores(idx, weights)
    if scores.shape[-1] == 0:
        return np.zeros(len(idx), bool), np.zeros(len(idx), np.int64)
    best = scores.max(0)
    return best.max(1) >= lo + relative * (hi - lo), best.argmax(1)


def _metric_name(name: str) -> str:
    return re.sub(r'\W+', '_', name).strip('_') or 'motif'


class SequenceMetrics:
    """The sequence metrics of the module docstring, as a `DomainMetrics`.

    Attributes:
        motifs: [(metric name, PWM [w, 4])].
        train: base indices of the training split [T, L] (memorisation), or None.
    """

    def __init__(self, motifs: Sequence[tuple[str, np.ndarray]], train: np.ndarray | None):
        """Args: motifs as (name, PFM counts [w, 4]); train: the training sequences (one-hot
        [T, L, 4] or base indices [T, L]), or None for no memorisation metrics."""
        names = [_metric_name(n) for n, _ in motifs]
        # Two motifs of one name (two matrices of a factor) keep apart by their order.
        self.motifs = [(f'{n}_{i}' if names.count(n) > 1 else n, pwm(c))
                       for i, (n, (_, c)) in enumerate(zip(names, motifs))]
        if train is not None and np.ndim(train) == 3:
            train = decode(train)
        self.train = train
        self._heldout_nn: float | None = None

    def names(self, num_classes: int) -> tuple[str, ...]:
        """The metric names (the same for every class count)."""
        del num_classes
        names = [f'kmer_js_{k}' for k in KMER_SIZES] + ['kmer_js_mean', 'gc_w1',
                                                        'homopolymer_js']
        for name, _ in self.motifs:
            names += [f'motif_{name}_share', f'motif_{name}_share_diff', f'motif_{name}_pos_js']
        if self.motifs:
            names.append('motif_share_diff_mean')
        if self.train is not None:
            names += ['nn_train_hamming', 'nn_train_copies', 'nn_train_hamming_heldout']
        return tuple(names)

    def __call__(self, real, real_labels, fake, fake_labels) -> dict[str, float]:
        """Scores `fake` (one-hot or probabilities [m, L, 4]) against `real` ([n, L, 4])."""
        del real_labels, fake_labels
        r, f = decode(real), decode(fake)
        out = {}
        for k in KMER_SIZES:
            out[f'kmer_js_{k}'] = js_distance(kmer_spectrum(r, k), kmer_spectrum(f, k))
        out['kmer_js_mean'] = float(np.mean([out[f'kmer_js_{k}'] for k in KMER_SIZES]))
        out['gc_w1'] = wasserstein1(gc_content(r), gc_content(f))
        out['homopolymer_js'] = js_distance(homopolymer_runs(r), homopolymer_runs(f))
        diffs = []
        for name, weights in self.motifs:
            r_hit, r_pos = motif_hits(r, weights)
            f_hit, f_pos = motif_hits(f, weights)
            starts = max(1, r.shape[1] - len(weights) + 1)
            out[f'motif_{name}_share'] = float(f_hit.mean())
            diffs.append(abs(float(f_hit.mean()) - float(r_hit.mean())))
            out[f'motif_{name}_share_diff'] = diffs[-1]
            out[f'motif_{name}_pos_js'] = js_distance(
                np.bincount(r_pos[r_hit], minlength=starts),
                np.bincount(f_pos[f_hit], minlength=starts))
        if self.motifs:
            out['motif_share_diff_mean'] = float(np.mean(diffs))
        if self.train is not None:
            nearest = nearest_hamming(f, self.train)
            out['nn_train_hamming'] = float(nearest.mean())
            out['nn_train_copies'] = float(np.mean(nearest == 0))
            if self._heldout_nn is None:
                self._heldout_nn = float(nearest_hamming(r, self.train).mean())
            out['nn_train_hamming_heldout'] = self._heldout_nn
        return out


def nearest_hamming(idx: np.ndarray, train: np.ndarray, chunk: int = 0) -> np.ndarray:
    """Hamming distance (a fraction of the length) from each sequence to its nearest training one.

    Matches are counted as a product of one-hot matrices (a no-base position matches nothing).

    Args:
        idx: base indices [N, L].
        train: base indices [T, L].
        chunk: sequences per product (0: as many as keep a product under 2^24 entries).

    Returns:
        float64 [N] in [0, 1].
    """
    length = idx.shape[1]
    eye = np.concatenate([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    t = eye[np.where(train < 0, 4, train)].reshape(len(train), -1)
    out = np.empty(len(idx))
    chunk = chunk or max(1, (1 << 24) // max(len(train), 1))
    for i in range(0, len(idx), chunk):
        q = eye[np.where(idx[i:i + chunk] < 0, 4, idx[i:i + chunk])].reshape(
            len(idx[i:i + chunk]), -1)
        out[i:i + chunk] = 1.0 - (q @ t.T).max(1) / length
    return out


def source_motifs(source: Any, config: Any) -> list[tuple[str, np.ndarray]]:
    """The motifs to scan for: data.seq_motifs from JASPAR, else the source's planted.json.

    Args:
        source: a `FastaSource` (its `motif_file`).
        config: the run's config.

    Returns:
        [(name, PFM [w, 4])].
    """
    ids = tuple(config.data.get('seq_motifs', ()) or ())
    if ids:
        from ganjax.data.prepare_dna import jaspar_pfm  # noqa: PLC0415 (needs pyjaspar)
        return [jaspar_pfm(str(i)) for i in ids]
    path = getattr(source, 'motif_file', '')
    if not path:
        return []
    from ganjax.data.fasta import load_planted  # noqa: PLC0415
    return [(m['name'], np.asarray(m['pfm'], np.float64)) for m in load_planted(path)['motifs']]


def build(source: Any, config: Any) -> SequenceMetrics:
    """The DOMAIN_METRICS['sequence'] entry: motifs of the data, and its training split."""
    from ganjax import data  # noqa: PLC0415 (the metrics package imports no data at load)
    train = data.build_source(config.data, 'train')
    index = np.arange(len(train))
    if len(index) > MAX_TRAIN_NEIGHBOURS:
        index = np.sort(np.random.default_rng(0).permutation(len(index))[:MAX_TRAIN_NEIGHBOURS])
    x = train.get_batch(index)['x']
    return SequenceMetrics(source_motifs(source, config), x)
