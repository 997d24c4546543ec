"""WGAN-GP on the embedded MNIST digits: Wasserstein loss, gradient penalty 10, n_critic 5.

Run:
    ganjax train --config configs/wgan_gp_mnist.py --workdir runs/wgan_gp_mnist

Expected result: about 10 minutes on 2 CPU cores for 1500 G updates (7500 critic updates, ~2.6
steps/s measured by benchmarks/step_throughput.py); not yet run to the end here, so no sample
quality is promised: d_loss is the critic's negated Wasserstein estimate plus the penalty and
should approach 0 from below as G improves.
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
