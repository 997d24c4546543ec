"""DCGAN on the 5,000 embedded MNIST digits, sized for a 2-core CPU: the README's demo.

Run:
    ganjax train --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist
    (or `make demo`, which installs first)

Expected result: about 7 minutes on 2 CPU cores (~7.5 steps/s); runs/dcgan_mnist/samples/ holds
grids of digit-like shapes from step ~500 and recognizable digits of most classes from step ~1500,
losses.png the loss curves (d_loss settles near 1.2, D's accuracy near 0.7), checkpoints/ the last
3 checkpoints. Running the same command again resumes (and stops at once if the run is complete).
"""

from configs import default


def get_config():
    """DCGAN-28 (conv + depth-to-space upsampling), width 16, non-saturating loss, Adam 2e-4."""
    config = default.get_config()
    config.model.arch = 'dcgan'
    config.model.latent_dim = 64
    # Width 16 (DCGAN's ngf = ndf = 64 scaled down) keeps a step near 0.2 s on 2 CPU cores.
    config.model.g_features = 16
    config.model.d_features = 16
    config.data.name = 'mnist_5k'
    config.data.batch_size = 64
    config.ema.decay = 0.995
    config.train.num_steps = 3000
    config.train.log_every = 50
    config.train.sample_every = 250
    config.train.checkpoint_every = 500
    return config
