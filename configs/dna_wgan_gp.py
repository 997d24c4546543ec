"""DNA WGAN-GP with the 1D ResNet of Killoran et al. 2017 on synthetic sequences with planted
JASPAR motifs.

Run (from the repository root; `pip install 'ganjax[dna]'` first):
    python -m ganjax.data.prepare_dna --out data/dna
    ganjax train --config configs/dna_wgan_gp.py --workdir runs/dna_wgan_gp
    ganjax eval --workdir runs/dna_wgan_gp
    ganjax sample --workdir runs/dna_wgan_gp --out samples.fa --num 1000

Expected result: not measured at this size (a step takes ~8 s on a 2-core CPU). A run narrowed
to 32 channels and 2 blocks, 3,000 steps on the shared CPU (benchmarks/results/dna/README.md),
learnt the per-position base composition and GC content but not whole motif instances (CTCF hit
share 0.02 generated vs 0.47 held-out; SP1 0.25 vs 0.46; GATA1 0.24 vs 0.42).

Killoran, Lee, Delong, Duvenaud and Frey, "Generating and designing DNA with deep generative
models" (2017, https://arxiv.org/abs/1712.06148): WGAN-GP (lambda 10, 5 critic steps per G step),
Adam 1e-4 with betas (0.5, 0.9), batch 64, latent 100, G and D of 5 residual blocks of 100
channels with convs of width 5 and residual scale 0.3, no normalisation, softmax over A/C/G/T.
FBGAN's variant (Gupta and Zou 2019): `--config.model.seq_output=gumbel_softmax
--config.model.g_features=512 --config.model.d_features=512 --config.train.n_critic=10`.

The data: 10,000 synthetic sequences of 64 bases, GC content 0.42, with CTCF (MA0139.1, rate
0.5), GATA1 (MA0035.4, rate 0.3) and SP1 (MA0079.5, rate 0.4) planted at known positions
(data/dna/README.md). Your own FASTA file: `--config.data.path=my.fa` (and data.seq_length,
data.seq_long / seq_short / seq_ambiguous for records of other lengths or with N; see
ganjax/data/fasta.py), and `--config.data.seq_motifs="('MA0139.1',)"` for the JASPAR motifs to
measure. Labels in the headers (`--config.data.seq_label_regex='class=(\\w+)'`) with
`--config.model.conditional=True` train a class-conditional pair (one-hot label appended to z,
projection critic).

Evaluation (eval.features='raw': the one-hot sequences are the feature vectors, since there is no
trained classifier for DNA) adds the sequence metrics of ganjax/metrics/sequence.py: k-mer
spectrum distances, GC content, homopolymer runs, motif-hit shares per motif and their positional
profile, and the nearest-training-sequence distance, beside the real-vs-real floor.
"""

from ganjax import default_config as default


def get_config():
    """Killoran et al.'s WGAN-GP on data/dna/sequences.fa."""
    config = default.get_config()
    config.model.arch = 'resnet1d'
    config.model.latent_dim = 100
    config.model.g_features = 100
    config.model.d_features = 100
    config.model.res_blocks = 5
    config.model.kernel_size = 5
    config.model.res_scale = 0.3
    config.model.seq_output = 'softmax'
    config.model.g_norm = 'none'
    config.model.d_norm = 'none'
    config.model.g_conditioning = 'concat'  # no norm layers to condition
    config.data.name = 'fasta'
    config.data.path = 'data/dna/sequences.fa'
    config.data.batch_size = 64
    config.loss.name = 'wasserstein'
    config.penalty.name = 'wgan_gp'
    config.penalty.weight = 10.0
    config.optim.g_lr = 1e-4
    config.optim.d_lr = 1e-4
    config.optim.b1 = 0.5
    config.optim.b2 = 0.9
    config.train.n_critic = 5
    config.train.num_steps = 20000
    config.train.sample_every = 1000
    config.eval.features = 'raw'
    config.eval.every = 1000
    config.eval.num_samples = 1000
    config.eval.best_metric = 'kmer_js_mean'
    return config
