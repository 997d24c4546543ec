"""cscGAN on the embedded PBMCs: expression profiles of a chosen cell type (Marouf et al. 2020).

Run:
    ganjax train --config configs/cscgan_pbmc.py --workdir runs/cscgan_pbmc
    ganjax eval --workdir runs/cscgan_pbmc --num 140     # metrics per type, markers, PCA picture
    ganjax sample --workdir runs/cscgan_pbmc --num 200 --class "CD14+ Monocyte" --out mono.h5ad

cscGAN is scGAN (configs/scgan_pbmc.py) made conditional on the cell type: conditional BatchNorm
in G (a gain and a bias per type in every BatchNorm layer; here also the type's one-hot code on
z) and a projection critic (Miyato & Koyama 2018). The types are the ten annotated ones of the embedded PBMCs (`obs['bulk_labels']`,
from 240 dendritic cells down to 8 naive T cells). Evaluations add train-on-synthetic /
test-on-real accuracy, per-type statistics and marker-gene recovery (ganjax/metrics/expression.py).
"""

from configs import scgan_pbmc


def get_config():
    """scgan_pbmc with conditional BatchNorm in G and a projection critic."""
    config = scgan_pbmc.get_config()
    config.model.conditional = True
    # cscGAN's G reads the type through conditional BatchNorm only; the type's one-hot code on z
    # as well ('both') is how configs/cdcgan_mnist.py learned classes far faster here.
    config.model.g_conditioning = 'both'
    config.model.d_head = 'projection'
    # Fakes of the real batch's cell types: the types are imbalanced (240 dendritic cells, 8
    # naive T cells), and with uniform types the critic's unconditional part tells fakes by their
    # type proportions, which G cannot change; the penalty then also joins cells of one type.
    config.train.fake_labels = 'data'
    return config
