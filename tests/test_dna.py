"""DNA sequences: the FASTA source, the planted-motif data, the 1D ResNet, FASTA samples and the
sequence metrics."""

import json
import os

import numpy as np
import pytest

pytest.importorskip('Bio')

from ganjax.config import default_config  # noqa: E402
from ganjax.data import build_source, fasta, prepare_dna  # noqa: E402
from ganjax.errors import ConfigError, DataError  # noqa: E402


def _write(path, text):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return str(path)


def _data_config(path, **keys):
    config = default_config().data
    config.name = 'fasta'
    config.path = str(path)
    config.eval_fraction = 0.25
    for k, v in keys.items():
        config[k] = v
    return config


def _all(config):
    """Both splits' sequences as strings, and their labels, sorted by record id."""
    rows = []
    for split in ('train', 'eval'):
        source = build_source(config, split)
        batch = source.get_batch(np.arange(len(source)))
        rows += zip(source.ids, fasta.to_strings(fasta.decode(batch['x'])), batch['label'])
    return sorted(rows)


def test_fasta_policies_labels_and_encoding(tmp_path):
    path = _write(tmp_path / 'a.fa', '>r1 cls=up\nACGTACGT\n>r2 cls=down\nacgtTTTTGG\n'
                  '>r3 cls=up\nACG\n>r4 cls=down\nACNTACGT\n>r5 cls=up\nACGUacgt\n')
    config = _data_config(path, seq_length=8, seq_long='centre_crop', seq_short='pad',
                          seq_pad='N', seq_ambiguous='skip', seq_label_regex=r'cls=(\w+)')
    rows = _all(config)
    # r2 is centre-cropped (2 extra bases: one off each end), r3 padded with no-base rows (N),
    # r4 skipped for its N, soft-masked and U bases read as A/C/G/T.
    assert [r[:2] for r in rows] == [('r1', 'ACGTACGT'), ('r2', 'cgtTTTTG'.upper()),
                                     ('r3', 'ACGNNNNN'), ('r5', 'ACGTACGT')]
    assert [r[2] for r in rows] == [1, 0, 1, 1]  # classes sorted: down = 0, up = 1
    source = build_source(config, 'train')
    assert source.dtype == np.uint8 and source.data_shape == (8, 4)
    assert source.scaling.kind == 'one_hot' and source.domain == 'sequence'
    assert source.class_names == ('down', 'up') and source.skipped == {'ambiguous': 1}
    # Uniform N: the N becomes one of A/C/G/T, the same in every build; random crops are seeded.
    table = _write(tmp_path / 'labels.tsv', 'id\tlabel\nr1\tx\nr2\ty\nr3\tx\nr4\ty\nr5\tx\n')
    config = _data_config(path, seq_length=8, seq_long='random_crop', seq_short='skip',
                          seq_ambiguous='uniform', seq_label_table=table)
    rows = _all(config)
    assert [r[0] for r in rows] == ['r1', 'r2', 'r4', 'r5']
    assert rows[2][1][:2] == 'AC' and rows[2][1][2] in 'ACGT' and rows[2][1][3:] == 'TACGT'
    assert rows[1][1] in {'acgtTTTTGG'.upper()[i:i + 8] for i in range(3)}
    assert [r[2] for r in rows] == [0, 1, 1, 0]
    fasta._cached.cache_clear()
    assert _all(config) == rows


def test_bad_fasta_files_get_clear_errors(tmp_path):
    cases = [
        ('missing.fa', None, {}, DataError, 'does not exist'),
        ('empty.fa', '', {}, DataError, 'holds no records'),
        ('noheader.fa', 'ACGT\n>r1\nACGT\n', {}, DataError, "line 1: expected a header line"),
        ('bad.fa', '>r1\nACGT\n>r2 x\nAC-T\n', {}, DataError, "record 'r2', position 3: "
                                                               "character '-'"),
        ('ragged.fa', '>r1\nACGT\n>r2\nACGTA\n', {}, DataError, "record 'r2': length 5 is longer"),
        ('short.fa', '>r1\nACGT\n>r2\nACG\n', {}, DataError, "record 'r2': length 3 is shorter"),
        ('nolabel.fa', '>r1 a\nACGT\n', {'seq_label_regex': r'cls=(\w)'}, DataError,
         'does not match its header'),
        ('policy.fa', '>r1\nACGT\n', {'seq_long': 'trim'}, ConfigError, 'data.seq_long'),
    ]
    for name, text, keys, error, message in cases:
        path = tmp_path / name if text is None else _write(tmp_path / name, text)
        with pytest.raises(error, match=message) as info:
            build_source(_data_config(path, **keys), 'train')
        assert name in str(info.value) or error is ConfigError


def test_prepare_plants_motifs_at_their_rates(tmp_path):
    def load(matrix_id, release):
        del release
        consensus = {'M1': 'GGGGGGGG', 'M2': 'TTTTTT'}[matrix_id]
        return matrix_id.lower(), np.eye(4)[['ACGT'.index(b) for b in consensus]] * 10
    plants = (prepare_dna.Plant('M1', 0.5, (2, 6)), prepare_dna.Plant('M2', 0.2, (20, 24)))
    paths = prepare_dna.prepare(str(tmp_path), num=400, length=32, gc=0.4, plants=plants,
                                load=load)
    with open(paths['planted'], encoding='utf-8') as f:
        truth = json.load(f)
    config = _data_config(paths['fasta'], eval_fraction=0.1)
    rows = _all(config)
    assert len(rows) == 400 and all(len(r[1]) == 32 for r in rows)
    for motif, consensus in (('M1', 'GGGGGGGG'), ('M2', 'TTTTTT')):
        starts = {s['id']: s['planted'].get(motif) for s in truth['sequences']}
        for rid, seq, _ in rows:
            if starts[rid] is not None:
                assert seq[starts[rid]:starts[rid] + len(consensus)] == consensus
        share = np.mean([v is not None for v in starts.values()])
        assert abs(share - {'M1': 0.5, 'M2': 0.2}[motif]) < 0.08
    assert build_source(config, 'eval').motif_file == os.path.join(str(tmp_path), 'planted.json')
    with pytest.raises(ConfigError, match='overlap'):
        prepare_dna.prepare(str(tmp_path), num=4, length=32, plants=(
            prepare_dna.Plant('M1', 0.5, (2, 6)), prepare_dna.Plant('M2', 0.5, (8, 9))),
            load=load)


def test_resnet1d_trains_and_its_outputs_are_base_probabilities():
    import jax
    import jax.numpy as jnp

    from ganjax.models import build_models
    from util import tiny_config, train_steps

    config = tiny_config('resnet1d', loss__name='wasserstein', penalty__name='wgan_gp',
                         model__g_norm='none', model__d_norm='none')
    _, state, metrics = train_steps(config, (16, 4), steps=1)
    assert np.isfinite(metrics['d_loss']) and np.isfinite(metrics['g_loss'])
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 8))
    y = jnp.array([0, 1, 2])
    for output, classes in (('softmax', 0), ('gumbel_softmax', 3)):
        config.model.seq_output = output
        config.model.g_conditioning = 'concat'
        g, d = build_models(config.model, (16, 4), classes)
        g_vars = g.init(jax.random.PRNGKey(1), z, y, train=False)
        x = g.apply(g_vars, z, y, train=False)
        assert x.shape == (3, 16, 4)
        np.testing.assert_allclose(np.sum(x, -1), 1.0, rtol=1e-5)
        # A function of z: the same z gives the same sample, Gumbel noise included.
        np.testing.assert_array_equal(x, g.apply(g_vars, z, y, train=False))
        out = d.apply(d.init(jax.random.PRNGKey(2), x, y, train=False), x, y, train=False)
        assert out['logit'].shape == (3,)
    with pytest.raises(ConfigError, match='resnet1d'):
        build_models(config.model, (16, 16, 4))
    # The convs are Dense layers on unfolded windows: equal to a 'SAME' convolution.
    from ganjax.models.resnet1d import unfold
    h = jax.random.normal(jax.random.PRNGKey(3), (2, 9, 3))
    for width in (1, 4, 5):
        kernel = jax.random.normal(jax.random.PRNGKey(width), (width, 3, 6))
        conv = jax.lax.conv_general_dilated(h, kernel, (1,), 'SAME',
                                            dimension_numbers=('NWC', 'WIO', 'NWC'))
        np.testing.assert_allclose(unfold(h, width) @ kernel.reshape(-1, 6), conv, atol=1e-5)


def test_sequence_metrics_motif_rates_scan_and_memorisation():
    from Bio import motifs
    from Bio.Seq import Seq

    from ganjax.metrics import sequence

    rng = np.random.default_rng(0)
    # The vectorised PWM scan equals Biopython's PSSM scores on both strands.
    counts = rng.integers(0, 20, size=(7, 4)).astype(float)
    counts[:, 3] += 100 - counts.sum(1)  # equal column totals: the pseudocounts then agree
    weights = sequence.pwm(counts)
    pssm = motifs.Motif(alphabet='ACGT', counts={b: counts[:, i].tolist() for i, b in
                                                  enumerate('ACGT')}).counts.normalize(
        pseudocounts=sequence.PSEUDOCOUNT * 100).log_odds()
    seqs = [''.join(rng.choice(list('ACGT'), 30)) for _ in range(3)]
    idx = np.array([['ACGT'.index(c) for c in s] for s in seqs])
    scores = sequence.pwm_scores(idx, weights)
    for n, s in enumerate(seqs):
        np.testing.assert_allclose(scores[0, n], pssm.calculate(Seq(s)), atol=1e-4)
        np.testing.assert_allclose(scores[1, n], pssm.reverse_complement().calculate(Seq(s)),
                                   atol=1e-4)
    # Known planted rates: a motif (absent from the A/T background) in 30% of the real and 60%
    # of the scored sequences (and its reverse, no hit, in others); a second motif nowhere.
    def make(n, share, pos):
        x = rng.choice([0, 3], size=(n, 40))
        hit = np.arange(n) < int(share * n)
        x[hit, pos:pos + 6] = [2, 2, 1, 2, 1, 1]  # GGCGCC
        x[hit[::-1] & ~hit, 20:26] = [2, 2, 1, 2, 1, 1][::-1]  # not a hit: reversed, not RC
        return np.eye(4, dtype=np.uint8)[x]
    ggcgcc = np.eye(4)[[2, 2, 1, 2, 1, 1]] * 50
    cccccc = np.eye(4)[[1] * 6] * 50
    real, fake = make(200, 0.3, 5), make(100, 0.6, 30)
    metric = sequence.SequenceMetrics([('GGC/GCC', ggcgcc), ('C6', cccccc)], real)
    out = metric(real, None, fake, None)
    assert set(out) == set(metric.names(0))
    assert out['motif_GGC_GCC_share'] == pytest.approx(0.6)
    assert out['motif_GGC_GCC_share_diff'] == pytest.approx(0.3)
    assert out['motif_GGC_GCC_pos_js'] == pytest.approx(1.0)  # starts 5 vs 30: disjoint
    assert out['motif_C6_share'] == 0.0
    assert out['gc_w1'] > 0 and 0 < out['kmer_js_1'] < 1
    # Real against itself: every distance 0, every sequence a copy of a training one.
    same = metric(real, None, real, None)
    assert same['kmer_js_mean'] == 0 and same['gc_w1'] == 0 and same['homopolymer_js'] == 0
    assert same['nn_train_copies'] == 1.0 and same['nn_train_hamming'] == 0.0
    assert out['nn_train_hamming'] > 0
    # Homopolymer runs and GC by hand.
    assert sequence.homopolymer_runs(np.array([[0, 0, 1, 1, 1, 2, -1, 2]]))[:3].tolist() == [
        2, 1, 1]
    assert sequence.gc_content(np.array([[0, 1, 2, -1]]))[0] == pytest.approx(2 / 3)


def test_fasta_writer_argmax_and_sampled(tmp_path):
    from ganjax import writers

    config = default_config()
    probs = np.array([[[0.1, 0.7, 0.1, 0.1], [0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5]]] * 200,
                     np.float32)
    write = writers.writer_for('.FA')
    detail = write(str(tmp_path / 'a.fa'), probs[:2], np.array([1, 0]), ('lo', 'hi'), config, 0)
    assert 'argmax' in detail
    assert open(tmp_path / 'a.fa').read() == ('>sample_000000 decode=argmax class=hi\nCNA\n'
                                              '>sample_000001 decode=argmax class=lo\nCNA\n')
    config.data.seq_decode = 'sample'
    write(str(tmp_path / 'b.fasta'), probs, None, (), config, 7)
    records = fasta.read_records(str(tmp_path / 'b.fasta'))
    assert records[0][1] == 'sample_000000 decode=sample seed=7'
    seqs = [r[2] for r in records]
    assert {s[1] for s in seqs} == {'N'} and {s[2] for s in seqs} == {'A', 'T'}
    assert 0.3 < np.mean([s[0] == 'C' for s in seqs]) < 0.95


def test_torch_peer_computes_ganjax_resnet1d():
    torch = pytest.importorskip('torch')
    import importlib.util

    import jax

    from ganjax.models import build_models
    from util import ROOT

    spec = importlib.util.spec_from_file_location(
        'torch_dna', os.path.join(ROOT, 'benchmarks', 'peers', 'torch_dna.py'))
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    config = default_config().model
    config.update(arch='resnet1d', latent_dim=6, g_features=5, d_features=7, res_blocks=2,
                  kernel_size=3, g_norm='none', d_norm='none')
    g, d = build_models(config, (9, 4))
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
    g_vars = g.init(jax.random.PRNGKey(1), z, train=False)
    x = g.apply(g_vars, z, train=False)
    d_vars = d.init(jax.random.PRNGKey(2), x, train=False)
    logits = d.apply(d_vars, x, train=False)['logit']
    tg = peer.Generator(6, 5, 9, blocks=2, kernel=3, scale=0.3)
    td = peer.Critic(7, 9, blocks=2, kernel=3, scale=0.3)
    peer.load_ganjax_variables(tg, td, g_vars['params'], d_vars['params'])
    with torch.no_grad():
        tx = tg(torch.from_numpy(np.array(z)))
        np.testing.assert_allclose(tx.permute(0, 2, 1).numpy(), x, atol=1e-5)
        np.testing.assert_allclose(td(tx).numpy(), logits, atol=1e-4)
