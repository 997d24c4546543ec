"""MLP GAN on 8 Gaussians on a ring (radius 2, std 0.02): the mode-collapse toy problem.

Run:
    ganjax train --config configs/mlp_ring8.py --workdir runs/mlp_ring8

Expected result: about 1.5 minutes on 2 CPU cores; samples/step_*.png are scatter plots over the
real points, eval/history.jsonl and eval.png the modes covered and the fraction of high-quality
samples (within 3 std of a mode) every 2000 steps. `python benchmarks/mode_collapse.py` runs this
config for 4 losses x 5 seeds; see benchmarks/README.md for what each covers. Adam at 1e-3: at the
1e-4 of many write-ups a run of 5000 steps is still a blob with 2 or 3 modes forming (measured:
non-saturating 1.4 modes covered and 9% high-quality samples on average over 5 seeds), and 20000
steps reach 93% high quality but on only 2 modes.
"""

from ganjax import default_config as default


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
    config.optim.g_lr = 1e-3
    config.optim.d_lr = 1e-3
    config.optim.b1 = 0.5
    config.ema.decay = 0.99
    config.train.num_steps = 10000
    # The MLPs are tiny: 100 steps per compiled call instead of 1 is ~2x the steps per second.
    config.train.steps_per_call = 100
    config.train.log_every = 1000
    config.train.sample_every = 2000
    config.train.checkpoint_every = 2000
    config.train.num_samples = 512
    config.eval.every = 2000
    config.eval.num_samples = 2500
    config.eval.batch_size = 2500
    config.eval.features = 'raw'
    # FID of raw 2D points compares Gaussian fits: a blob in the ring's middle can score better
    # than a generator on 6 of 8 modes (seen here). Coverage (Naeem et al. 2020) counts the real
    # neighbourhoods the samples reach.
    config.eval.best_metric = 'coverage'
    return config
