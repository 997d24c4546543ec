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

Expected result (benchmarks/results/expression/cscgan_pbmc: 3,000 steps on 2 shared CPU cores,
about 22 minutes; `ganjax eval --num 140`, the 140 held-out cells against as many generated with
their types, beside the floor of 140 training cells): a random forest trained on the generated
cells calls the types of real cells with accuracy 0.729, against 0.736 trained on real cells;
per-type mean expression correlates 0.901 (floor 0.916); the top-10 marker genes of a type in real
cells are markers in the generated ones 73% of the time (floor 69%; monocytes AIF1, FCGR3A, LST1,
TYROBP, FCER1G in the same order); per-gene means correlate 0.98, RBF MMD 0.0026 (floor -0.001),
and real and generated cells are still told apart (random-forest AUC 0.93, floor 0.41).
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
