"""The loss-variant study on the 8-Gaussian ring, as one `ganjax sweep`.

Six losses x 5 seeds x 2 learning rates = 60 members in two programs (WGAN-GP's penalty and 5
critic steps make the second), as benchmarks/loss_study.py runs it for the committed study:

    ganjax sweep --config configs/loss_study_ring8.py --workdir runs/study_ring8
    ganjax report --workdir runs/study_ring8 --metric modes_covered

Expected result: benchmarks/results/loss_study/ring8/report.md.
"""

from configs import mlp_ring8

#: Lucic et al. 2018's losses plus the relativistic average one; WGAN-GP with the settings of
#: Gulrajani et al. 2017 (penalty 10, 5 critic steps, Adam beta2 0.9).
LOSS_VARIANTS = (
    'ns: loss.name=non_saturating',
    'minimax: loss.name=minimax',
    'hinge: loss.name=hinge',
    'least_squares: loss.name=least_squares',
    'ragan: loss.name=relativistic_average',
    'wgan_gp: loss.name=wasserstein penalty.name=wgan_gp penalty.weight=10 train.n_critic=5 '
    'optim.b2=0.9',
)


def get_config():
    config = mlp_ring8.get_config()
    config.train.num_steps = 1500
    config.train.log_every = 100
    config.train.sample_every = 1500
    config.train.checkpoint_every = 1500
    config.train.progress = False
    config.eval.every = 500
    config.eval.best_metric = 'modes_covered'
    config.sweep.seeds = (0, 1, 2, 3, 4)
    config.sweep.variants = LOSS_VARIANTS
    config.sweep.points = ('optim.g_lr=0.0001 optim.d_lr=0.0001',
                           'optim.g_lr=0.001 optim.d_lr=0.001')
    return config
