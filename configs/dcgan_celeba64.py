"""DCGAN-64 on CelebA faces (tensorflow-datasets celeb_a), center-cropped and resized to 64x64.

Run (after preparing celeb_a once, see the README's tensorflow-datasets section):
    ganjax train --config configs/dcgan_celeba64.py --workdir runs/dcgan_celeba64

Expected result (the DCGAN paper's setting; not yet run with ganjax, which needs a GPU and the
prepared dataset): face-like 64x64 samples after some 10k steps at batch 128. This is also the
DCGAN-64 of benchmarks/README.md (about 52 images/s at batch 64 on a 2-core CPU, float32).
"""

from ganjax import default_config as default


def get_config():
    """DCGAN-64 (4 upsampling stages), ngf = ndf = 64, non-saturating loss, batch 128."""
    config = default.get_config()
    config.model.arch = 'dcgan'
    config.data.name = 'tfds'
    config.data.tfds_name = 'celeb_a'
    config.data.image_size = 64
    config.data.channels = 3
    config.data.batch_size = 128
    config.train.num_steps = 50000
    return config
