"""DCGAN on the 5,000 embedded MNIST digits, sized for a 2-core CPU: the README's demo.

Run:
    ganjax train --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist
    (or `make demo`, which installs first)

Expected result: about 2.5 minutes of training on 2 CPU cores (~20 steps/s, the 4,500 digits held
on the device); runs/dcgan_mnist/samples/ holds grids of digit-like shapes from step ~500 and, at
step 3000, recognizable digits of most classes with some malformed strokes; losses.png the loss
curves (d_loss 0.5-0.9, D's accuracy 0.8-0.9 late in the run), checkpoints/ the last 3
checkpoints. Two runs give identical losses (the last logged window's d_loss 0.730 here). Running
the same command again resumes (and stops at once if the run is complete). `make demo` also
evaluates the EMA generator every 1000 steps against the 500 held-out digits with the classifier
of `ganjax train-features --dataset mnist_5k` (97.2% held-out accuracy): classifier FID 95 / 97 /
75 at steps 1000 / 2000 / 3000, precision / recall 0.70 / 0.73 at the end, beside a real-vs-real
floor of 9.4 (`make demo`, measured after the step's hyperparameters became data; before, with
float64-rounded Adam constants, 101 / 84 / 73: benchmarks/README.md, "Sample quality").
"""

from ganjax import default_config as default


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
