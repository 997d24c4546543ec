"""DCGAN-32 on CIFAR-10 (tensorflow-datasets), the classic DCGAN setting.

Run (after preparing cifar10 once, see the README's tensorflow-datasets section):
    ganjax train --config configs/dcgan_cifar10.py --workdir runs/dcgan_cifar10

Expected result (the DCGAN paper's setting; not yet run with ganjax, which needs a GPU and the
prepared dataset): object-like 32x32 samples after some 20k steps at batch 128. Too slow for a
2-core CPU.
"""

from ganjax import default_config as default


def get_config():
    """DCGAN-32, ngf = ndf = 64, non-saturating loss, Adam 2e-4 / beta1 0.5, batch 128."""
    config = default.get_config()
    config.model.arch = 'dcgan'
    config.data.name = 'tfds'
    config.data.tfds_name = 'cifar10'
    config.data.batch_size = 128
    config.train.num_steps = 50000
    return config
