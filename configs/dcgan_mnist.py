"""DCGAN on the 5,000 embedded MNIST digits, sized for a 2-core CPU: the README's demo.

Run:
    ganjax train --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist
    (or `make demo`, which installs first)

Expected result: about 5.5 minutes on 2 CPU cores (~9 steps/s); runs/dcgan_mnist/samples/ holds
grids of digit-like shapes from step ~500 and recognizable digits of most classes from step ~2000,
losses.png the loss curves (d_loss settles near 1.0, D's accuracy near 0.75), checkpoints/ the last
3 checkpoints. Running the same command again resumes (and stops at once if the run is complete).
"""

from configs import default


def get_config():
    """DCGAN-28, widths 32/32, non-saturating loss, Adam 2e-4."""
    config = default.get_config()
    config.model.arch = 'dcgan'
    config.model.latent_dim = 64
    # DCGAN's ngf = ndf = 64 scaled down to keep a step under 0.1 s on 2 CPU cores. With G at
    # width 16 (7x7x32 -> 14x14x16 -> image) D won (accuracy ~0.93) and the digits were blobs.
    config.model.g_features = 32
    config.model.d_features = 32
    config.data.name = 'mnist_5k'
    config.data.batch_size = 64
    config.ema.decay = 0.995
    config.train.num_steps = 3000
    config.train.log_every = 50
    config.train.sample_every = 250
    config.train.checkpoint_every = 500
    return config
