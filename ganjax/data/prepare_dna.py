"""Writes the default DNA data of configs/dna_wgan_gp.py: synthetic sequences with real
transcription-factor motifs planted at known rates and positions.

    pip install 'ganjax[dna]'      # Biopython, and pyjaspar, whose wheel holds the JASPAR database
    python -m ganjax.data.prepare_dna --out data/dna

Clearly synthetic: each sequence is an i.i.d. background of the given GC content (P(G) = P(C) =
gc / 2, P(A) = P(T) = (1 - gc) / 2); then each motif, independently with its rate, is planted on
the forward strand at a start drawn uniformly from its window, its bases drawn column by column
from the motif's position frequency matrix (PFM). The motifs' windows do not overlap, so no motif
overwrites another. The PFMs come from the JASPAR SQLite database that pyjaspar ships (nothing is
downloaded; the release is pinned, JASPAR2024 by default).

Written to OUT: sequences.fa (one record per sequence, the header naming what was planted where),
planted.json (the truth: settings, each motif's PFM, and per sequence the motifs and starts) and
README.md (how it was made). The 'fasta' source reads planted.json when it sits beside the FASTA
file, so the sequence metrics scan for the planted motifs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Callable

import numpy as np

from ganjax.errors import ConfigError, GanjaxError

BASES = 'ACGT'
#: The JASPAR release read from pyjaspar's bundled databases.
JASPAR_RELEASE = 'JASPAR2024'


@dataclasses.dataclass(frozen=True)
class Plant:
    """One motif to plant.

    Attributes:
        matrix_id: the JASPAR matrix ID, e.g. 'MA0139.1'.
        rate: probability that a sequence carries it.
        window: (first, last) 0-based start positions, inclusive.
    """
    matrix_id: str
    rate: float
    window: tuple[int, int]


#: The default motifs: CTCF (19 bp), GATA1 (11 bp), SP1 (9 bp) in three disjoint windows of a
#: 64-base sequence.
DEFAULT_PLANTS = (Plant('MA0139.1', 0.5, (4, 12)), Plant('MA0035.4', 0.3, (34, 40)),
                  Plant('MA0079.5', 0.4, (52, 55)))


def jaspar_pfm(matrix_id: str, release: str = JASPAR_RELEASE) -> tuple[str, np.ndarray]:
    """A motif's name and PFM from pyjaspar's bundled JASPAR database (offline).

    Args:
        matrix_id: e.g. 'MA0139.1'.
        release: e.g. 'JASPAR2024'.

    Returns:
        (name, counts float64 [length, 4] in the order A, C, G, T).

    Raises:
        ConfigError: without pyjaspar, or for an ID the release does not hold.
    """
    try:
        from pyjaspar import jaspardb  # noqa: PLC0415 (an optional extra: ganjax[dna])
    except ImportError:
        raise ConfigError("JASPAR motifs need pyjaspar: pip install 'ganjax[dna]' (or "
                          'pyjaspar>=3.0)') from None
    motif = jaspardb(release=release).fetch_motif_by_id(matrix_id)
    if motif is None:
        raise ConfigError(f'JASPAR matrix {matrix_id!r} is not in {release}')
    counts = np.array([list(motif.counts[b]) for b in BASES], np.float64).T
    return str(motif.name), counts


def plant(num: int, length: int, gc: float, plants: tuple[Plant, ...],
          pfms: dict[str, tuple[str, np.ndarray]], seed: int) -> tuple[np.ndarray, list[dict]]:
    """Draws the sequences and plants the motifs.

    Args:
        num: number of sequences.
        length: their length.
        gc: GC content of the background, in (0, 1).
        plants: the motifs, rates and windows.
        pfms: matrix_id -> (name, PFM [w, 4]).
        seed: the seed of everything drawn.

    Returns:
        (base indices int8 [num, length], per sequence {matrix_id: start} of what was planted).

    Raises:
        ConfigError: for a rate outside [0, 1], a window that does not fit, or overlapping
            windows.
    """
    spans = []
    for p in plants:
        width = len(pfms[p.matrix_id][1])
        lo, hi = p.window
        if not 0 <= p.rate <= 1:
            raise ConfigError(f'motif {p.matrix_id}: rate {p.rate} is not in [0, 1]')
        if not 0 <= lo <= hi or hi + width > length:
            raise ConfigError(f'motif {p.matrix_id} ({width} bp): start window {p.window} does '
                              f'not fit in sequences of length {length}')
        spans.append((lo, hi + width, p.matrix_id))
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise ConfigError(f'the windows of motifs {a} and {b} overlap')
    rng = np.random.default_rng([seed, 0xD1A])
    background = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    seqs = rng.choice(4, size=(num, length), p=background).astype(np.int8)
    truth = [{} for _ in range(num)]
    for p in plants:
        pfm = pfms[p.matrix_id][1]
        probs = pfm / pfm.sum(axis=1, keepdims=True)
        carriers = np.flatnonzero(rng.random(num) < p.rate)
        starts = rng.integers(p.window[0], p.window[1] + 1, size=len(carriers))
        # Inverse-CDF draw of every motif column of every carrier at once.
        u = rng.random((len(carriers), len(pfm)))
        bases = (u[..., None] > np.cumsum(probs, axis=1)[None]).sum(-1).clip(0, 3)
        for row, start, motif in zip(carriers, starts, bases):
            seqs[row, start:start + len(pfm)] = motif
            truth[row][p.matrix_id] = int(start)
    return seqs, truth


def prepare(out: str, num: int = 10000, length: int = 64, gc: float = 0.42,
            plants: tuple[Plant, ...] = DEFAULT_PLANTS, seed: int = 0,
            release: str = JASPAR_RELEASE,
            load: Callable[[str, str], tuple[str, np.ndarray]] = jaspar_pfm) -> dict[str, str]:
    """Writes OUT/sequences.fa, OUT/planted.json and OUT/README.md.

    Args:
        out: the folder.
        num: number of sequences.
        length: their length.
        gc: GC content of the background.
        plants: the motifs to plant.
        seed: the seed.
        release: the JASPAR release of the PFMs.
        load: (matrix_id, release) -> (name, PFM); pyjaspar's by default (tests pass their own).

    Returns:
        {'fasta', 'planted', 'readme'}: the paths written.
    """
    if num < 1 or length < 1 or not 0 < gc < 1:
        raise ConfigError(f'--num and --length must be positive and --gc in (0, 1); got {num}, '
                          f'{length}, {gc}')
    pfms = {p.matrix_id: load(p.matrix_id, release) for p in plants}
    seqs, truth = plant(num, length, gc, plants, pfms, seed)
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f) for k, f in
             (('fasta', 'sequences.fa'), ('planted', 'planted.json'), ('readme', 'README.md'))}
    table = np.frombuffer(BASES.encode(), np.uint8)
    with open(paths['fasta'] + '.tmp', 'w', encoding='ascii') as f:
        for i, (row, planted) in enumerate(zip(seqs, truth)):
            what = ';'.join(f'{pfms[m][0]}:{m}@{s}' for m, s in planted.items()) or 'none'
            f.write(f'>syn{i:06d} planted={what}\n{table[row].tobytes().decode()}\n')
    os.replace(paths['fasta'] + '.tmp', paths['fasta'])
    record = {
        'synthetic': True, 'num': num, 'length': length, 'gc': gc, 'seed': seed,
        'jaspar_release': release, 'strand': '+',
        'motifs': [{'matrix_id': p.matrix_id, 'name': pfms[p.matrix_id][0], 'rate': p.rate,
                    'window': list(p.window), 'pfm': pfms[p.matrix_id][1].tolist(),
                    'planted_share': float(np.mean([p.matrix_id in t for t in truth]))}
                   for p in plants],
        'sequences': [{'id': f'syn{i:06d}', 'planted': t} for i, t in enumerate(truth)],
    }
    with open(paths['planted'], 'w', encoding='utf-8') as f:
        json.dump(record, f)
    with open(paths['readme'], 'w', encoding='utf-8') as f:
        f.write(_readme(record))
    return paths


def _readme(record: dict) -> str:
    rows = [f"| {m['name']} | {m['matrix_id']} | {len(m['pfm'])} | {m['rate']} | "
            f"{m['window'][0]}-{m['window'][1]} | {m['planted_share']:.4f} |"
            for m in record['motifs']]
    gc = record['gc']
    return '\n'.join([
        '# Synthetic DNA with planted JASPAR motifs', '',
        'SYNTHETIC DATA, not genomic sequence. Written by `python -m ganjax.data.prepare_dna` '
        f"(seed {record['seed']}) for `configs/dna_wgan_gp.py`.", '',
        f"- {record['num']} sequences of {record['length']} bases (`sequences.fa`).",
        f'- Background: every base i.i.d., P(A) = P(T) = {(1 - gc) / 2:.3f}, P(C) = P(G) = '
        f'{gc / 2:.3f} (GC content {gc}).',
        '- Motifs: each sequence independently carries each motif with its rate; the start is '
        'uniform over the window (0-based, inclusive); the motif is written on the forward '
        'strand, each base drawn from its column of the position frequency matrix (counts '
        "normalised per column). The windows do not overlap. PFMs from pyjaspar's bundled "
        f"{record['jaspar_release']} SQLite database (no download).",
        '- Headers: `>synNNNNNN planted=NAME:MATRIX_ID@START;...` (`planted=none` for none).',
        '- `planted.json`: these settings, the PFMs, and every sequence\'s planted motifs and '
        'starts (the truth that the motif metrics are checked against).', '',
        '| motif | JASPAR ID | width | rate | start window | share planted |',
        '| --- | --- | --- | --- | --- | --- |', *rows, '',
        'JASPAR is an open-access database (https://jaspar.elixir.no, where its terms are); '
        'cite Rauluseviciute et al., "JASPAR 2024", Nucleic Acids Research 52(D1), 2024, and '
        'pyjaspar (https://github.com/asntech/pyjaspar).', ''])


def main(argv: list[str] | None = None) -> int:
    """The command line: `python -m ganjax.data.prepare_dna --out DIR [--num --length --gc
    --seed]`."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='folder to write')
    parser.add_argument('--num', type=int, default=10000, help='number of sequences')
    parser.add_argument('--length', type=int, default=64, help='sequence length')
    parser.add_argument('--gc', type=float, default=0.42, help='background GC content')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        paths = prepare(args.out, args.num, args.length, args.gc, seed=args.seed)
    except GanjaxError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"wrote {paths['fasta']}, {paths['planted']} and {paths['readme']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
