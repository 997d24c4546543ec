"""Optimizers for G and D, chosen by name, each with its own learning rate (TTUR)."""

from typing import Callable

import optax
from ml_collections import ConfigDict

from ganjax.errors import lookup


def _adam(cfg: ConfigDict, lr) -> optax.GradientTransformation:
    return optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


def _adamw(cfg: ConfigDict, lr) -> optax.GradientTransformation:
    return optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)


def _rmsprop(cfg: ConfigDict, lr) -> optax.GradientTransformation:
    # WGAN with weight clipping uses RMSProp: momentum-based optimizers were unstable there.
    return optax.rmsprop(lr, decay=cfg.b2, eps=cfg.eps)


def _sgd(cfg: ConfigDict, lr) -> optax.GradientTransformation:
    return optax.sgd(lr, momentum=cfg.b1 or None)


OPTIMIZERS: dict[str, Callable[[ConfigDict, optax.ScalarOrSchedule], optax.GradientTransformation]] = {
    'adam': _adam,
    'adamw': _adamw,
    'rmsprop': _rmsprop,
    'sgd': _sgd,
}


def _schedule(name: str, lr: float, num_steps: int) -> optax.ScalarOrSchedule:
    schedules = {
        'constant': lambda: lr,
        # Linear decay to zero over the run, common in GAN training (e.g. BigGAN-style finetuning).
        'linear': lambda: optax.linear_schedule(lr, 0.0, max(num_steps, 1)),
        'cosine': lambda: optax.cosine_decay_schedule(lr, max(num_steps, 1)),
    }
    return lookup(schedules, name, 'optim.schedule')()


def make_optimizers(config: ConfigDict) -> tuple[optax.GradientTransformation,
                                                 optax.GradientTransformation]:
    """Builds the generator's and the discriminator's optimizers from `config.optim`.

    Both use `optim.name` with their own learning rates (`g_lr`, `d_lr`: the two time-scale update
    rule of Heusel et al. 2017, https://arxiv.org/abs/1706.08500). Gradients are clipped to
    `optim.grad_clip_norm` first when it is positive. Schedules count the optimizer's own updates:
    D makes `n_critic` updates per step.

    Args:
      config: the full run config.

    Returns:
      (g_optimizer, d_optimizer).

    Raises:
      ConfigError: for an unknown optimizer or schedule name.
    """
    cfg = config.optim
    make = lookup(OPTIMIZERS, cfg.name, 'optim.name')
    steps = config.train.num_steps

    def build(lr, updates_per_step):
        tx = make(cfg, _schedule(cfg.schedule, lr, steps * updates_per_step))
        if cfg.grad_clip_norm > 0:
            tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
        return tx

    return build(cfg.g_lr, 1), build(cfg.d_lr, config.train.n_critic)
