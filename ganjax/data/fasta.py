"""'fasta': DNA sequences from a FASTA file, one-hot encoded [L, 4] over A, C, G, T.

    pip install 'ganjax[dna]'      # Biopython, which parses the file (Bio.SeqIO)

Every record becomes one example of a fixed length L (data.seq_length; 0 = the first record's
length), its bases one-hot in the order A, C, G, T. The whole file is read, checked and encoded
when the source is built, so a bad record stops the run before training, naming the file, the
record and the position.

Stored dtype: uint8, one byte per (position, base), a quarter of float32's memory (10,000
sequences of length 100 take 4 MB); the source's `Scaling.one_hot` turns it into float32 for
the model without rescaling.

Policies (config keys of the `data` section):
    seq_long       a record longer than L: 'error' (default), 'random_crop' (a window drawn once
                   from data.split_seed and the record's index, so that every run sees the same
                   one), 'centre_crop' (the middle L bases, the extra base on the right when odd),
                   or 'skip' (left out, counted).
    seq_short      a record shorter than L: 'error' (default), 'pad' (on the right with
                   data.seq_pad), or 'skip'.
    seq_pad        the padding symbol: 'A', 'C', 'G' or 'T' (that base's one-hot), or 'N' (an
                   all-zero row: no base, so padding is never mistaken for sequence).
    seq_ambiguous  N and the other IUPAC ambiguity codes (R Y S W K M B D H V N) inside the
                   kept window: 'skip' (default; the record is left out and counted), or
                   'uniform' (each such position becomes one of the bases its code allows, drawn
                   uniformly, once, from data.split_seed and the record's index).
Lowercase (soft-masked) bases are read as uppercase; U is read as T. Any other character is one
DataError naming the file, the record id and the 1-based position.

Labels (optional, for conditional models): data.seq_label_regex, a regular expression searched in
each header line (after '>'); its first group (or the whole match) is the record's class name.
Or data.seq_label_table, a two-column file (comma or tab separated: record id, class name; a
first line whose id is no record's is a header). Class names are numbered in sorted order; a
record without a label is an error.

The train/eval split is a seeded hold-out of data.eval_fraction (stratified by label when
labelled). Sources have `domain = 'sequence'`: evaluations add the sequence metrics of
`ganjax.metrics.sequence` (k-mer spectra, GC content, motif hits, memorisation).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import io
import json
import logging
import os
import re
from typing import Any

import numpy as np

from ganjax.data import source as source_lib
from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: The one-hot order of the bases.
BASES = 'ACGT'
#: IUPAC nucleotide codes -> the bases they allow (U read as T).
IUPAC = {'A': 'A', 'C': 'C', 'G': 'G', 'T': 'T', 'U': 'T', 'R': 'AG', 'Y': 'CT', 'S': 'CG',
         'W': 'AT', 'K': 'GT', 'M': 'AC', 'B': 'CGT', 'D': 'AGT', 'H': 'ACT', 'V': 'ACG',
         'N': 'ACGT'}
LONG_POLICIES = ('error', 'random_crop', 'centre_crop', 'skip')
SHORT_POLICIES = ('error', 'pad', 'skip')
AMBIGUOUS_POLICIES = ('skip', 'uniform')
PAD_SYMBOLS = ('A', 'C', 'G', 'T', 'N')
#: A `planted.json` beside the FASTA file (written by `ganjax.data.prepare_dna`) gives the motifs
#: that the sequence metrics scan for, unless data.seq_motifs names others.
PLANTED_FILE = 'planted.json'

# Byte -> code: 0..3 a base, 4 an ambiguity code (which one is looked up when needed), 255 bad.
_CODE = np.full(256, 255, np.uint8)
for _sym, _allowed in IUPAC.items():
    for _c in (_sym, _sym.lower()):
        _CODE[ord(_c)] = BASES.index(_allowed) if len(_allowed) == 1 else 4
_AMBIGUOUS = 4
# Byte -> allowed-base mask [256, 4] of the ambiguity codes.
_ALLOWED = np.zeros((256, 4), bool)
for _sym, _allowed in IUPAC.items():
    for _c in (_sym, _sym.lower()):
        _ALLOWED[ord(_c), [BASES.index(b) for b in _allowed]] = True


@dataclasses.dataclass(frozen=True)
class Options:
    """The fasta options of the data config, validated (see `options`)."""
    path: str
    length: int
    long: str
    short: str
    pad: str
    ambiguous: str
    label_regex: str
    label_table: str
    seed: int


def _choice(config: Any, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = source_lib.config_value(config, key, default)
    if value not in choices:
        raise ConfigError(f'data.{key}={value!r} is not one of {list(choices)}')
    return value


def options(config: Any) -> Options:
    """Reads and validates the fasta options of a data config.

    Args:
        config: the data config.

    Returns:
        The `Options`.

    Raises:
        ConfigError: for a missing path, a negative length, an unknown policy or pad symbol, or a
            label regex that does not compile.
    """
    path = str(source_lib.config_value(config, 'path', ''))
    if not path:
        raise ConfigError("data.name='fasta' needs data.path, the path of a FASTA file (make the "
                          'default synthetic data with `python -m ganjax.data.prepare_dna --out '
                          'DIR`)')
    length = source_lib.config_value(config, 'seq_length', 0)
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 0:
        raise ConfigError(f'data.seq_length must be an integer >= 0 (0 = the first record\'s '
                          f'length), got {length!r}')
    regex = str(source_lib.config_value(config, 'seq_label_regex', ''))
    table = str(source_lib.config_value(config, 'seq_label_table', ''))
    if regex and table:
        raise ConfigError('data.seq_label_regex and data.seq_label_table exclude each other; '
                          'give one source of labels')
    if regex:
        try:
            re.compile(regex)
        except re.error as e:
            raise ConfigError(f'data.seq_label_regex={regex!r} is not a regular expression: '
                              f'{e}') from None
    _, seed = source_lib.holdout_options(config)
    return Options(path, int(length), _choice(config, 'seq_long', 'error', LONG_POLICIES),
                   _choice(config, 'seq_short', 'error', SHORT_POLICIES),
                   _choice(config, 'seq_pad', 'N', PAD_SYMBOLS),
                   _choice(config, 'seq_ambiguous', 'skip', AMBIGUOUS_POLICIES), regex, table,
                   seed)


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A FASTA file encoded under some `Options`.

    Attributes:
        x: one-hot uint8 [N, L, 4] (all-zero rows: 'N' padding).
        labels: int32 [N] (-1 everywhere without labels).
        ids: the kept records' ids.
        class_names: sorted class names ( () without labels).
        skipped: {reason: count} of the records left out.
    """
    x: np.ndarray
    labels: np.ndarray
    ids: tuple[str, ...]
    class_names: tuple[str, ...]
    skipped: dict[str, int]


def _open_text(path: str):
    if not os.path.exists(path):
        raise DataError(f'FASTA file {path!r} does not exist')
    if not os.path.isfile(path):
        raise DataError(f'FASTA path {path!r} is not a file')
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rt', encoding='utf-8') as f:
                return io.StringIO(f.read())
        with open(path, encoding='utf-8') as f:
            return io.StringIO(f.read())
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f'cannot read FASTA file {path!r}: {e}') from e


def read_records(path: str) -> list[tuple[str, str, str]]:
    """Parses a FASTA file with Biopython's `SeqIO` (plain or .gz).

    Args:
        path: the file.

    Returns:
        [(id, header line without '>', sequence text)] in file order.

    Raises:
        ConfigError: when Biopython is not installed.
        DataError: for a missing, unreadable or empty file, or text before the first '>' header.
    """
    try:
        from Bio import SeqIO  # noqa: PLC0415 (an optional extra: ganjax[dna])
    except ImportError:
        raise ConfigError("reading FASTA files needs Biopython: pip install 'ganjax[dna]' (or "
                          'biopython>=1.81)') from None
    text = _open_text(path)
    for number, line in enumerate(text, 1):
        if line.strip():
            if not line.startswith('>'):
                raise DataError(f'FASTA file {path!r}, line {number}: expected a header line '
                                f"starting with '>', got {line.strip()[:40]!r}")
            break
    text.seek(0)
    try:
        records = [(r.id, r.description, str(r.seq)) for r in SeqIO.parse(text, 'fasta')]
    except ValueError as e:
        raise DataError(f'FASTA file {path!r} is malformed: {e}') from e
    if not records:
        raise DataError(f'FASTA file {path!r} holds no records')
    return records


def _codes(path: str, rid: str, seq: str) -> tuple[np.ndarray, np.ndarray]:
    """(byte values, codes) of a sequence; raises DataError at the first bad character."""
    raw = np.frombuffer(seq.encode('utf-8'), np.uint8)
    codes = _CODE[raw]
    bad = np.flatnonzero(codes == 255)
    if len(bad) or len(raw) != len(seq):
        # Position in characters (a non-ASCII character is several bytes).
        pos = next(i for i, ch in enumerate(seq) if ord(ch) > 127 or _CODE[ord(ch)] == 255)
        raise DataError(f'FASTA file {path!r}, record {rid!r}, position {pos + 1}: character '
                        f'{seq[pos]!r} is not a base (A C G T U) or an IUPAC ambiguity code '
                        f'(R Y S W K M B D H V N)')
    return raw, codes


def _labels(path: str, opts: Options, records: list[tuple[str, str, str]]) -> list[str] | None:
    if opts.label_regex:
        pattern = re.compile(opts.label_regex)
        names = []
        for rid, header, _ in records:
            match = pattern.search(header)
            if match is None:
                raise DataError(f'FASTA file {path!r}, record {rid!r}: data.seq_label_regex='
                                f'{opts.label_regex!r} does not match its header {header!r}')
            names.append(match.group(1) if pattern.groups else match.group(0))
        return names
    if opts.label_table:
        table = _read_label_table(opts.label_table, {rid for rid, _, _ in records})
        missing = [rid for rid, _, _ in records if rid not in table]
        if missing:
            raise DataError(f'label table {opts.label_table!r} has no label for record '
                            f'{missing[0]!r} of {path!r} ({len(missing)} records without one)')
        return [table[rid] for rid, _, _ in records]
    return None


def _read_label_table(path: str, ids: set[str]) -> dict[str, str]:
    if not os.path.isfile(path):
        raise DataError(f'label table {path!r} does not exist')
    with open(path, encoding='utf-8-sig') as f:
        text = f.read()
    first = next((line for line in text.splitlines() if line.strip()), '')
    delimiter = '\t' if '\t' in first else ','
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1)
            if any(c.strip() for c in row)]
    if rows and rows[0][1][0].strip() not in ids:
        rows = rows[1:]  # a header line
    table = {}
    for n, row in rows:
        if len(row) < 2 or not row[1].strip():
            raise DataError(f'label table {path!r}, line {n}: expected "record id{delimiter}label"')
        table[row[0].strip()] = row[1].strip()
    return table


def encode(opts: Options) -> Encoded:
    """Reads, checks and one-hot encodes the FASTA file of `opts` under its policies.

    Args:
        opts: validated `Options`.

    Returns:
        The `Encoded` records.

    Raises:
        DataError: for a bad file or character (naming file, record and position), a record
            whose length or ambiguity codes its policy refuses, or no record left.
    """
    path = opts.path
    records = read_records(path)
    names = _labels(path, opts, records)
    length = opts.length or len(records[0][2])
    if length < 1:
        raise DataError(f'FASTA file {path!r}: the first record {records[0][0]!r} is empty; set '
                        'data.seq_length')
    pad_row = np.zeros(4, np.uint8)
    if opts.pad != 'N':
        pad_row[BASES.index(opts.pad)] = 1
    eye = np.eye(4, dtype=np.uint8)
    x = np.zeros((len(records), length, 4), np.uint8)
    kept, skipped = [], {'long': 0, 'short': 0, 'ambiguous': 0}
    for i, (rid, _, seq) in enumerate(records):
        raw, codes = _codes(path, rid, seq)
        n = len(codes)
        # One generator per record, so that its crop and draws do not depend on the others.
        rng = np.random.default_rng([opts.seed, 0xD4A, i])
        if n > length:
            if opts.long == 'error':
                raise DataError(f'FASTA file {path!r}, record {rid!r}: length {n} is longer than '
                                f"data.seq_length={length}; set data.seq_long to 'random_crop', "
                                "'centre_crop' or 'skip'")
            if opts.long == 'skip':
                skipped['long'] += 1
                continue
            start = (n - length) // 2 if opts.long == 'centre_crop' else int(
                rng.integers(0, n - length + 1))
            raw, codes = raw[start:start + length], codes[start:start + length]
        elif n < length:
            if opts.short == 'error':
                raise DataError(f'FASTA file {path!r}, record {rid!r}: length {n} is shorter than '
                                f"data.seq_length={length}; set data.seq_short to 'pad' or "
                                "'skip'")
            if opts.short == 'skip':
                skipped['short'] += 1
                continue
        ambiguous = np.flatnonzero(codes == _AMBIGUOUS)
        if len(ambiguous) and opts.ambiguous == 'skip':
            skipped['ambiguous'] += 1
            continue
        row = x[len(kept)]
        row[:len(codes)] = eye[np.minimum(codes, 3)]
        row[len(codes):] = pad_row
        for pos in ambiguous:
            allowed = np.flatnonzero(_ALLOWED[raw[pos]])
            row[pos] = eye[allowed[rng.integers(0, len(allowed))]]
        kept.append(i)
    if not kept:
        raise DataError(f'FASTA file {path!r}: no record is left of {len(records)} after the '
                        f'length and ambiguity policies (skipped: {_skip_text(skipped)})')
    x = x[:len(kept)]
    if names is None:
        labels, class_names = np.full(len(kept), -1, np.int32), ()
    else:
        class_names = tuple(sorted({names[i] for i in kept}))
        index = {c: k for k, c in enumerate(class_names)}
        labels = np.array([index[names[i]] for i in kept], np.int32)
    return Encoded(x, labels, tuple(records[i][0] for i in kept), class_names,
                   {k: v for k, v in skipped.items() if v})


def _skip_text(skipped: dict[str, int]) -> str:
    return ', '.join(f'{v} {k}' for k, v in skipped.items() if v) or 'none'


@functools.lru_cache(maxsize=4)
def _cached(opts: Options, mtime_ns: int, size: int) -> Encoded:
    """Encodes a file once per (options, modification time, size): train and eval share it."""
    del mtime_ns, size  # Only part of the cache key.
    encoded = encode(opts)
    encoded.x.flags.writeable = False
    encoded.labels.flags.writeable = False
    return encoded


def load(opts: Options) -> Encoded:
    """`encode`, cached while the file is unchanged."""
    try:
        stat = os.stat(opts.path)
    except OSError:
        return encode(opts)  # raises the missing-file error
    return _cached(opts, stat.st_mtime_ns, stat.st_size)


class FastaSource(source_lib.ArraySource):
    """An `ArraySource` of one-hot DNA sequences [L, 4] (uint8).

    Attributes:
        domain: 'sequence' (the metrics of `ganjax.metrics.sequence`).
        alphabet: 'ACGT', the order of the one-hot axis.
        ids: the records' ids.
        skipped: {reason: count} of the records the policies left out (whole file).
        motif_file: a `planted.json` beside the file ('' if none).
    """

    domain = 'sequence'
    alphabet = BASES

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, ids: tuple[str, ...],
                 skipped: dict[str, int], motif_file: str, **kwargs: Any):
        """Args: as `ArraySource`, plus ids, skipped and motif_file (see above)."""
        super().__init__(x, labels, **kwargs)
        self.ids = tuple(ids)
        self.skipped = dict(skipped)
        self.motif_file = motif_file
        if self.skipped:
            self.description += f'; skipped {_skip_text(self.skipped)} records of the file'


def build_fasta(config: Any, split: str) -> FastaSource:
    """Builds the 'fasta' source from data.path.

    Args:
        config: the data config.
        split: 'train' or 'eval'.

    Returns:
        A `FastaSource` of uint8 one-hot sequences [L, 4].

    Raises:
        ConfigError: for bad options, or without Biopython.
        DataError: for a bad file (see `encode`).
    """
    source_lib.check_split(split)
    eval_fraction, seed = source_lib.holdout_options(config)
    opts = options(config)
    encoded = load(opts)
    if encoded.skipped and split == 'train':
        logger.info('FASTA %s: skipped %s records', opts.path, _skip_text(encoded.skipped))
    stratify = encoded.labels if encoded.class_names else None
    idx = source_lib.holdout_indices(len(encoded.x), eval_fraction, seed, split, labels=stratify,
                                     what=f'FASTA {opts.path!r}')
    planted = os.path.join(os.path.dirname(os.path.abspath(opts.path)), PLANTED_FILE)
    return FastaSource(encoded.x[idx], encoded.labels[idx],
                       ids=tuple(encoded.ids[i] for i in idx), skipped=encoded.skipped,
                       motif_file=planted if os.path.isfile(planted) else '',
                       num_classes=len(encoded.class_names),
                       name=f'fasta {os.path.basename(opts.path)} {split}',
                       class_names=encoded.class_names, scaling=Scaling.one_hot(np.uint8))


def decode(x: np.ndarray) -> np.ndarray:
    """One-hot or probability rows -> base indices, -1 where a row is all zero (padding).

    Args:
        x: [..., L, 4] one-hot (any dtype) or probabilities.

    Returns:
        int8 [..., L]: 0..3 for A, C, G, T by argmax, -1 for an all-zero row.
    """
    x = np.asarray(x)
    index = np.argmax(x, axis=-1).astype(np.int8)
    return np.where(np.max(x, axis=-1) > 0, index, np.int8(-1))


def to_strings(indices: np.ndarray) -> list[str]:
    """Base indices [N, L] (-1: padding, written 'N') -> sequence strings."""
    table = np.frombuffer(b'ACGTN', np.uint8)
    codes = np.where(np.asarray(indices) < 0, 4, indices).astype(np.intp)
    return [table[row].tobytes().decode('ascii') for row in codes]


def load_planted(path: str) -> dict[str, Any]:
    """Reads a `planted.json` (see `ganjax.data.prepare_dna`)."""
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def sample_bases(x: np.ndarray, decode_mode: str, seed: int) -> np.ndarray:
    """Per-base probabilities -> base indices, by argmax or by drawing from them.

    Args:
        x: [N, L, 4] probabilities (or any non-negative weights: rows are normalised).
        decode_mode: 'argmax' (the most probable base) or 'sample' (one draw per position).
        seed: the seed of the draws.

    Returns:
        int8 [N, L]; -1 where a row is all zero.
    """
    if decode_mode == 'argmax':
        return decode(x)
    if decode_mode != 'sample':
        raise ConfigError(f"data.seq_decode={decode_mode!r} is not one of ['argmax', 'sample']")
    x = np.clip(np.asarray(x, np.float64), 0, None)
    total = x.sum(-1, keepdims=True)
    cdf = np.cumsum(x / np.where(total > 0, total, 1), axis=-1)
    u = np.random.default_rng([seed, 0xFA]).random(x.shape[:-1] + (1,))
    index = np.minimum((u > cdf).sum(-1), 3).astype(np.int8)
    return np.where(total[..., 0] > 0, index, np.int8(-1))


def write_fasta(out: str, x: np.ndarray, labels: np.ndarray | None,
                class_names: tuple[str, ...], config: Any, seed: int) -> str:
    """The `ganjax sample --out x.fa` writer (`ganjax.writers.SampleWriter`).

    Each sample becomes a record `>sample_NNNNNN decode=argmax` (or `decode=sample seed=S`,
    plus ` class=NAME` for a conditional generator), its bases decoded from the generator's
    probabilities as data.seq_decode says; an all-zero row is written 'N'.

    Args:
        out: the file.
        x: [N, L, 4] probabilities in the data's units.
        labels: the classes generated for, or None.
        class_names: the run's class names.
        config: the run's config (data.seq_decode).
        seed: the sampling seed (draws of decode='sample').

    Returns:
        One line saying how the bases were decoded.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != len(BASES):
        raise ConfigError(f'--out {out}: FASTA holds DNA sequences [length, 4]; the run\'s '
                          f'samples have shape {x.shape[1:]}')
    mode = str(source_lib.config_value(config.data, 'seq_decode', 'argmax'))
    seqs = to_strings(sample_bases(x, mode, seed))
    how = f'decode={mode}' + (f' seed={seed}' if mode == 'sample' else '')
    tmp = out + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        for i, seq in enumerate(seqs):
            label = '' if labels is None else (
                f' class={class_names[labels[i]] if labels[i] < len(class_names) else labels[i]}')
            f.write(f'>sample_{i:06d} {how}{label}\n{seq}\n')
    os.replace(tmp, out)
    return (f'FASTA: {len(seqs)} sequences of {x.shape[1]} bases, '
            + ('the most probable base at each position (data.seq_decode=argmax)'
               if mode == 'argmax' else
               f'each base drawn from the generator\'s probabilities with seed {seed} '
               '(data.seq_decode=sample)'))
