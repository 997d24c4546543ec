"""The results of a DNA run: the sequence metrics beside the real-vs-real floor, the motif rates
(planted, held-out, generated), and per-position base frequencies of real and generated sequences.

    python benchmarks/dna_results.py --workdir runs/dna_wgan_gp --out benchmarks/results/dna

Writes OUT/metrics.json (the evaluation: `ganjax.evaluate.evaluate`), OUT/metrics.md (the
tables), OUT/base_frequencies.png (per-position frequency of each base, held-out vs generated),
OUT/kmer_scatter.png (3- and 6-mer frequencies, generated against held-out) and, when
logomaker is installed (`ganjax[dna]`), OUT/logos.png (the same as sequence logos of
information content).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import data, evaluate, run_dir  # noqa: E402
from ganjax.data import fasta  # noqa: E402
from ganjax.metrics import sequence  # noqa: E402
from ganjax.train_step import make_generate_fn, sample_latent  # noqa: E402

BASE_COLOURS = {'A': '#2ca02c', 'C': '#1f77b4', 'G': '#ff7f0e', 'T': '#d62728'}


def generated(workdir: str, num: int, seed: int) -> np.ndarray:
    """`num` sequences of the run's EMA generator (probabilities [num, L, 4])."""
    import jax  # noqa: PLC0415
    _, gan, state = run_dir.load_run(workdir)
    z = sample_latent(jax.random.PRNGKey(seed), num, gan.latent_dim)
    y = (np.arange(num, dtype=np.int32) % gan.num_classes) if gan.num_classes else None
    return np.asarray(jax.jit(make_generate_fn(gan))(state.ema_params, state.g_state, z, y))


def frequencies(idx: np.ndarray) -> np.ndarray:
    """Per-position base frequencies [L, 4] of base indices [N, L]."""
    counts = np.stack([(idx == b).sum(0) for b in range(4)], axis=1).astype(np.float64)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def plot_frequencies(real: np.ndarray, fake: np.ndarray, motifs: list, path: str) -> None:
    """Per-position base frequency lines, held-out above generated, motif windows shaded."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True, dpi=100)
    for ax, freq, title in ((axes[0], real, 'held-out (real)'), (axes[1], fake, 'generated')):
        for b, base in enumerate('ACGT'):
            ax.plot(np.arange(len(freq)), freq[:, b], color=BASE_COLOURS[base], label=base)
        for m in motifs:
            lo, hi = m['window'][0], m['window'][1] + len(m['pfm'])
            ax.axvspan(lo - 0.5, hi - 0.5, color='grey', alpha=0.12)
            ax.text((lo + hi) / 2, 0.95, m['name'], ha='center', va='top', fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel('frequency')
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8, loc='center left', bbox_to_anchor=(1.0, 0.5))
    axes[1].set_xlabel('position (0-based); shaded: the planted motifs\' windows')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_kmer_scatter(real: np.ndarray, fake: np.ndarray, path: str, ks=(3, 6)) -> None:
    """k-mer frequencies, generated against held-out, one panel per k (log scales)."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 4.6), dpi=100)
    for ax, k in zip(np.atleast_1d(axes), ks):
        r = sequence.kmer_spectrum(real, k).astype(float)
        f = sequence.kmer_spectrum(fake, k).astype(float)
        r, f = r / r.sum(), f / f.sum()
        floor = 0.5 / max(r.size, 1) / 100
        ax.scatter(np.maximum(r, floor), np.maximum(f, floor), s=4, alpha=0.4)
        lo, hi = floor, max(r.max(), f.max()) * 1.5
        ax.plot([lo, hi], [lo, hi], color='grey', lw=0.8)
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel(f'held-out {k}-mer frequency')
        ax.set_ylabel(f'generated {k}-mer frequency')
        ax.set_title(f'{k}-mers (JS distance {sequence.js_distance(r, f):.3f}; zeros drawn at '
                     'the floor)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_logos(real: np.ndarray, fake: np.ndarray, path: str) -> bool:
    """Information-content logos (logomaker) of held-out and generated frequencies."""
    try:
        import logomaker  # noqa: PLC0415
        import pandas as pd  # noqa: PLC0415
    except ImportError:
        return False
    import matplotlib  # noqa: PLC0415
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, axes = plt.subplots(2, 1, figsize=(14, 4), dpi=100)
    frames = [logomaker.transform_matrix(pd.DataFrame(freq, columns=list('ACGT')),
                                         from_type='probability', to_type='information')
              for freq in (real, fake)]
    # One scale for both (the information of a position of these data is far below 2 bits).
    top = max(0.1, max(float(df.sum(axis=1).max()) for df in frames) * 1.1)
    for ax, df, title in zip(axes, frames, ('held-out (real)', 'generated')):
        logomaker.Logo(df, ax=ax, color_scheme='classic')
        ax.set_ylim(0, top)
        ax.set_ylabel('bits')
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    """Evaluates a run and writes the tables and plots."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--workdir', required=True)
    p.add_argument('--num', type=int, default=1000, help='samples per side')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=os.path.join('benchmarks', 'results', 'dna'))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = evaluate.evaluate(args.workdir, num=args.num)
    config = run_dir.load_workdir_config(args.workdir)
    held_out = data.build_source(config.data, 'eval')
    real = fasta.decode(held_out.get_batch(np.arange(min(args.num, len(held_out))))['x'])
    fake = fasta.decode(generated(args.workdir, args.num, args.seed))
    planted = fasta.load_planted(held_out.motif_file) if held_out.motif_file else {'motifs': []}
    rows = ['| motif | JASPAR ID | planted rate | held-out hit share | generated hit share |',
            '| --- | --- | --- | --- | --- |']
    rates = {}
    for m in planted['motifs']:
        weights = sequence.pwm(np.asarray(m['pfm']))
        r_hit, _ = sequence.motif_hits(real, weights)
        f_hit, _ = sequence.motif_hits(fake, weights)
        rates[m['name']] = {'planted': m['rate'], 'held_out': float(r_hit.mean()),
                            'generated': float(f_hit.mean())}
        rows.append(f"| {m['name']} | {m['matrix_id']} | {m['rate']} | {r_hit.mean():.3f} | "
                    f"{f_hit.mean():.3f} |")
    table = ['| metric | generator | real vs real |', '| --- | --- | --- |']
    table += [f"| {k} | {v:.4f} | {result['real_vs_real'][k]:.4f} |"
              for k, v in result['generator'].items()]
    with open(os.path.join(args.out, 'metrics.json'), 'w', encoding='utf-8') as f:
        json.dump({**{k: v for k, v in result.items() if k != 'path'}, 'motif_rates': rates,
                   'num_generated': args.num, 'sample_seed': args.seed}, f, indent=2)
    with open(os.path.join(args.out, 'metrics.md'), 'w', encoding='utf-8') as f:
        f.write(f"Step {result['step']}, {result['num']} samples per side vs the held-out split "
                f"({result['features']}); real vs real: training sequences vs held-out.\n\n")
        f.write('\n'.join(rows) + '\n\n' + '\n'.join(table) + '\n')
    real_freq, fake_freq = frequencies(real), frequencies(fake)
    plot_frequencies(real_freq, fake_freq, planted['motifs'],
                     os.path.join(args.out, 'base_frequencies.png'))
    plot_kmer_scatter(real, fake, os.path.join(args.out, 'kmer_scatter.png'))
    logos = plot_logos(real_freq, fake_freq, os.path.join(args.out, 'logos.png'))
    print('\n'.join(rows))
    print(evaluate.format_table(result))
    print(f"-> {args.out}/metrics.json, metrics.md, base_frequencies.png, kmer_scatter.png"
          + (', logos.png' if logos else ' (no logomaker: no logos)'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
