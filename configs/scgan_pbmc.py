"""scGAN on the embedded PBMCs: realistic single-cell expression profiles (Marouf et al. 2020).

Run:
    ganjax train --config configs/scgan_pbmc.py --workdir runs/scgan_pbmc
    ganjax eval --workdir runs/scgan_pbmc --num 140            # metrics + PCA picture
    ganjax sample --workdir runs/scgan_pbmc --num 500 --out cells.h5ad

scGAN (Marouf et al. 2020, Nature Communications 11:166): a WGAN-GP (penalty 10, 5 critic steps,
Adam 1e-4 with betas 0.5 / 0.9), G 256-512-1024 with BatchNorm, a critic 1024-512-256 without
normalisation, latent 128, batch 128, and a library-size normalisation (LSN) output layer: G's
ReLU output is rescaled so that every cell has the same number of counts as the library-size
normalised data. The data: the embedded 700 PBMCs x 765 genes (`data.name='pbmc68k_reduced'`, a
subsample of the 68k PBMCs scGAN was trained on), each cell normalised to data.target_sum counts
over these genes, which G's library-size layer produces and the critic reads as they are (the
metrics compare log1p of them).

Expected result (benchmarks/results/expression/scgan_pbmc: 3,000 steps on 2 shared CPU cores,
about 45 minutes under a load of 6-9; `ganjax eval --num 140`, generator vs the real-vs-real floor
of 140 training cells): per-gene means correlate 0.978 (floor 0.990) and variances 0.956 (0.978),
the gene-gene correlation distance is 0.103 (0.094), RBF MMD 0.0035 (-0.001), the share of zeros
is off by 0.078 per gene (0.034), and a random forest tells generated from real cells with AUC
0.93 (0.41 for two real sets). The PCA picture shows the generated cells on the real clusters
(monocytes, B cells, dendritic cells, T/NK cells) with some between them (recall 0.35).

Your own data: `--config.data.name=expression --config.data.path=cells.h5ad` (or .csv / .tsv /
.npz; `data.layer`, `data.values`, `data.label_column` say where the values and cell types are).
"""

from ganjax import default_config as default


def get_config():
    """scGAN's sizes and training rules on the embedded PBMCs."""
    config = default.get_config()
    config.data.name = 'pbmc68k_reduced'
    config.data.preprocess = 'library'
    # scGAN normalised ~17,000 genes to 20,000 counts, about 1.2 per gene; 1,000 over these 765
    # genes keeps that scale (the critic's values and penalty grow with it: at 10,000 the
    # conditional run trained visibly worse in its first 2,000 steps).
    config.data.target_sum = 1000.0
    config.data.eval_fraction = 0.2
    # scGAN: 128; five critic batches of 128 are more than the 560 training cells here.
    config.data.batch_size = 64
    config.model.arch = 'mlp'
    config.model.latent_dim = 128
    config.model.g_widths = (256, 512, 1024)
    config.model.d_widths = (1024, 512, 256)
    config.model.g_norm = 'batch'
    config.model.d_norm = 'none'
    config.model.output_activation = 'library_size'
    config.model.library_size = 1000.0
    config.loss.name = 'wasserstein'
    config.penalty.name = 'wgan_gp'
    config.penalty.weight = 10.0
    config.train.n_critic = 5
    config.optim.g_lr = 1e-4
    config.optim.d_lr = 1e-4
    config.optim.b1 = 0.5
    config.optim.b2 = 0.9
    config.train.num_steps = 3000
    config.train.log_every = 100
    config.train.sample_every = 1000
    config.train.checkpoint_every = 1000
    config.eval.every = 1000
    config.eval.num_samples = 140
    config.eval.best_metric = 'mmd'
    return config
