"""SNGAN ResNet-32 on CIFAR-10: spectral norm on D, hinge loss, n_critic 5 (Miyato et al. 2018).

Run (after preparing cifar10 once, see the README's tensorflow-datasets section):
    ganjax train --config configs/resnet_cifar10.py --workdir runs/resnet_cifar10

Expected result (not yet run with ganjax, which needs a GPU and the prepared dataset): the paper
reports an Inception score of about 8.2 after 50k G updates at batch 64 with these settings (Adam
2e-4, beta1 0, beta2 0.9, linear decay); evaluation arrives with the metrics issue.
"""

from ganjax import default_config as default


def get_config():
    """ResNet G (256 channels) and D (128 channels, spectral norm), hinge loss, n_critic 5."""
    config = default.get_config()
    config.model.arch = 'resnet'
    config.model.latent_dim = 128
    config.model.g_features = 256
    config.model.d_features = 128
    config.model.d_norm = 'none'
    config.model.d_spectral_norm = True
    config.model.upsample = 'conv_d2s'  # the residual path's x2 + 3x3 conv, as sub-pixel conv
    config.loss.name = 'hinge'
    config.optim.b1 = 0.0
    config.optim.b2 = 0.9
    config.optim.schedule = 'linear'
    config.data.name = 'tfds'
    config.data.tfds_name = 'cifar10'
    config.data.batch_size = 64
    config.train.n_critic = 5
    config.train.num_steps = 50000
    config.ema.decay = 0.9999
    return config
