"""WGAN-GP on the embedded MNIST digits: Wasserstein loss, gradient penalty 10, n_critic 5.

Run:
    ganjax train --config configs/wgan_gp_mnist.py --workdir runs/wgan_gp_mnist

Expected result: about 9 minutes on 2 CPU cores for 1500 G updates (7500 critic updates, ~2.7
steps/s). Run here: digit-like samples from step ~500, many recognizable digits (0, 1, 3, 6, 7, 8,
9) but wobbly strokes at step 1500; d_loss (the critic's negated Wasserstein estimate plus the
penalty) rose from about -4 at step 500 to -1.7 at step 1500. D's accuracy metrics read the sign
of the critic's output, which means nothing for a Wasserstein critic.
"""

from configs import dcgan_mnist


def get_config():
    """DCGAN-28 with layer norm in the critic (batch norm breaks the per-example penalty)."""
    config = dcgan_mnist.get_config()
    config.model.d_norm = 'layer'
    config.loss.name = 'wasserstein'
    config.penalty.name = 'wgan_gp'
    config.penalty.weight = 10.0
    config.optim.b1 = 0.0
    config.optim.b2 = 0.9
    config.optim.g_lr = 1e-4
    config.optim.d_lr = 1e-4
    config.train.n_critic = 5
    config.train.num_steps = 1500
    return config
