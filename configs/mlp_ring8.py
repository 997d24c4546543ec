"""MLP GAN on 8 Gaussians on a ring (radius 2, std 0.02): the mode-collapse toy problem.

Run:
    ganjax train --config configs/mlp_ring8.py --workdir runs/mlp_ring8

Expected result: about 35 seconds on 2 CPU cores (~200 steps/s); samples/step_*.png are scatter
plots. With these settings and the non-saturating loss the generator collapses onto a few of the 8
modes with streaks between them (seen here: 3 of 8 at step 5000): the classic failure that this
toy problem exists to compare losses and penalties on (e.g. --config.loss.name=hinge,
--config.penalty.name=r1). `python benchmarks/mode_collapse.py` scores 4 losses x 5 seeds of
this config (modes covered, high-quality samples): at 5000 steps none covers the ring
(benchmarks/results/mode_collapse_ring8_cpu.json).
"""

from configs import default


def get_config():
    """MLP pair, 3 hidden layers of 128 units without normalization, linear output, batch 256."""
    config = default.get_config()
    config.model.arch = 'mlp'
    config.model.latent_dim = 16
    config.model.g_features = 128
    config.model.d_features = 128
    config.model.mlp_layers = 3
    config.model.g_norm = 'none'
    config.model.d_norm = 'none'
    config.model.output_activation = 'none'
    config.data.name = 'ring8'
    config.data.batch_size = 256
    config.optim.g_lr = 1e-4
    config.optim.d_lr = 1e-4
    config.optim.b1 = 0.5
    config.ema.decay = 0.99
    config.train.num_steps = 5000
    config.train.log_every = 100
    config.train.sample_every = 1000
    config.train.checkpoint_every = 1000
    config.train.num_samples = 512
    return config
