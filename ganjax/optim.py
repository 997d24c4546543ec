"""Optimizers for G and D, chosen by name, each with its own learning rate (TTUR).

The numeric hyperparameters (learning rate, betas, eps, weight decay, and an optimizer's own such
as optimistic Adam's `optimism`) are data, not constants
compiled into the step: every optimizer is wrapped in `optax.inject_hyperparams`, which keeps them
as arrays in the optimizer state, and the step writes the run's values (`GANState.hparams`) there
before each update (`with_hparams`). So a population of GANs vmapped over one program can give
each member its own learning rates and betas.
"""

import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

from ganjax.errors import ConfigError, lookup

#: The hyperparameters every optimizer factory takes (each uses those it needs).
OPTIMIZER_HPARAMS = ('learning_rate', 'b1', 'b2', 'eps', 'weight_decay')
#: Optimizer name -> its further hyperparameters, each a key of `config.optim` (only these
#: optimizers carry them, so the states of the others keep their structure).
EXTRA_HPARAMS: dict[str, tuple[str, ...]] = {'optimistic_adam': ('optimism',)}

OptimizerFactory = Callable[..., optax.GradientTransformation]


def _adam(learning_rate, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    del weight_decay
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def _adamw(learning_rate, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def _rmsprop(learning_rate, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    # WGAN with weight clipping uses RMSProp: momentum-based optimizers were unstable there.
    del b1, weight_decay
    return optax.rmsprop(learning_rate, decay=b2, eps=eps)


def _sgd(learning_rate, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    # Momentum b1 is data too, so the trace is always kept; b1 = 0 gives plain SGD's updates.
    del b2, eps, weight_decay
    return optax.sgd(learning_rate, momentum=b1)


def _optimistic_adam(learning_rate, b1, b2, eps, weight_decay,
                     optimism) -> optax.GradientTransformation:
    """Optimistic Adam (Daskalakis et al., "Training GANs with Optimism", ICLR 2018,
    https://arxiv.org/abs/1711.00141): with r_t Adam's normalised step m^_t / (sqrt(v^_t) + eps),
    the update is -lr * ((1 + optimism) r_t - optimism r_{t-1}); optimism = 1 is the paper's
    theta_t = theta_{t-1} - 2 lr r_t + lr r_{t-1}. optax's `optimistic_adam_v2` with alpha = 1 and
    beta = optimism; its first step uses r_0 = r_1 (a plain Adam step). Without Nesterov momentum,
    as in the paper."""
    del weight_decay
    return optax.optimistic_adam_v2(learning_rate, alpha=1.0, beta=optimism, b1=b1, b2=b2,
                                    eps=eps, nesterov=False)


#: Optimizer name -> factory(learning_rate, b1, b2, eps, weight_decay, *EXTRA_HPARAMS[name]).
OPTIMIZERS: dict[str, OptimizerFactory] = {
    'adam': _adam,
    'adamw': _adamw,
    'rmsprop': _rmsprop,
    'sgd': _sgd,
    'optimistic_adam': _optimistic_adam,
}

#: Schedule name -> (length -> multiplier of the learning rate as a function of the update count),
#: or None for a constant rate.
SCHEDULES: dict[str, Callable[[int], optax.Schedule] | None] = {
    'constant': None,
    # Linear decay to zero over the run, common in GAN training (e.g. BigGAN-style finetuning).
    'linear': lambda n: optax.linear_schedule(1.0, 0.0, n),
    'cosine': lambda n: optax.cosine_decay_schedule(1.0, n),
}


def schedule_steps(config: ConfigDict) -> int:
    """The schedule's length in steps: `optim.schedule_steps`, or `train.num_steps` when it is 0.

    `ganjax.train` fixes the value when a run starts and stores it in the run's config, so a
    resume with another `train.num_steps` keeps the schedule.
    """
    steps = int(config.optim.schedule_steps)
    return steps if steps > 0 else int(config.train.num_steps)


def optimizer_hparams(config: ConfigDict, which: str) -> dict[str, float]:
    """The numeric hyperparameters of G's (`which='g'`) or D's (`'d'`) optimizer in `config`:
    `OPTIMIZER_HPARAMS`, and `EXTRA_HPARAMS` of the optimizer `optim.name` names."""
    cfg = config.optim
    extra = {k: float(cfg[k]) for k in EXTRA_HPARAMS.get(cfg.name, ())}
    return {'learning_rate': float(cfg[f'{which}_lr']), 'b1': float(cfg.b1),
            'b2': float(cfg.b2), 'eps': float(cfg.eps),
            'weight_decay': float(cfg.weight_decay), **extra}


def make_optimizer(config: ConfigDict, which: str) -> optax.GradientTransformation:
    """Builds G's (`which='g'`) or D's (`'d'`) optimizer from `config.optim`.

    Both use `optim.name` with their own learning rates (`g_lr`, `d_lr`: the two time-scale update
    rule of Heusel et al. 2017, https://arxiv.org/abs/1706.08500). Gradients are clipped to
    `optim.grad_clip_norm` first when it is positive. A linear or cosine schedule multiplies the
    learning rate by a factor that decays from 1 to 0 over `schedule_steps(config)` steps,
    counting the optimizer's own updates (D makes `n_critic` updates per step).

    Args:
      config: the full run config.
      which: 'g' or 'd'.

    Returns:
      An `optax.inject_hyperparams` transformation: its state holds the hyperparameters named in
      `OPTIMIZER_HPARAMS` (and the optimizer's `EXTRA_HPARAMS`) as float32 arrays (see
      `with_hparams`).

    Raises:
      ConfigError: for an unknown optimizer or schedule name.
    """
    if which not in ('g', 'd'):
        raise ValueError(f"which must be 'g' or 'd', got {which!r}")
    cfg = config.optim
    factory = lookup(OPTIMIZERS, cfg.name, 'optim.name')
    shape = lookup(SCHEDULES, cfg.schedule, 'optim.schedule')
    updates_per_step = int(config.train.n_critic) if which == 'd' else 1
    clip = float(cfg.grad_clip_norm)
    if shape is not None:
        shape = shape(max(schedule_steps(config) * updates_per_step, 1))

    def build(learning_rate, b1, b2, eps, weight_decay, **extra):
        parts = [factory(learning_rate, b1, b2, eps, weight_decay, **extra)]
        if clip > 0:
            parts.insert(0, optax.clip_by_global_norm(clip))
        if shape is not None:
            parts.append(optax.scale_by_schedule(shape))
        return parts[0] if len(parts) == 1 else optax.chain(*parts)

    # inject_hyperparams reads the names of the hyperparameters from build's signature: name the
    # optimizer's own ones there too (they arrive in `extra`).
    names = OPTIMIZER_HPARAMS + EXTRA_HPARAMS.get(cfg.name, ())
    build.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])

    return optax.inject_hyperparams(build)(**optimizer_hparams(config, which))


def make_optimizers(config: ConfigDict) -> tuple[optax.GradientTransformation,
                                                 optax.GradientTransformation]:
    """(G's optimizer, D's optimizer): `make_optimizer(config, 'g')` and `(config, 'd')`."""
    return make_optimizer(config, 'g'), make_optimizer(config, 'd')


def with_hparams(opt_state, hparams: dict[str, jax.Array]):
    """Writes hyperparameter values into an `inject_hyperparams` optimizer state.

    Args:
      opt_state: the state of a transformation from `make_optimizer`.
      hparams: name (a key of `OPTIMIZER_HPARAMS` or the optimizer's `EXTRA_HPARAMS`) ->
        scalar, possibly traced.

    Returns:
      The state with those values, float32.
    """
    current = opt_state.hyperparams
    unknown = set(hparams) - set(current)
    if unknown:
        raise ConfigError(f'unknown optimizer hyperparameters {sorted(unknown)}; the optimizer '
                          f'has {sorted(current)}')
    values = {k: jnp.asarray(v, current[k].dtype) for k, v in hparams.items()}
    return opt_state._replace(hyperparams={**current, **values})
