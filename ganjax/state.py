"""GANState: everything a GAN run changes, in one pytree."""

from typing import Any

import flax.struct
import jax

PyTree = Any


@flax.struct.dataclass
class GANState:
    """The whole trainable state of a GAN, as one pytree of arrays.

    Flax's `TrainState` holds one model and one optimizer; a GAN has two of each plus an EMA copy of
    the generator, so this is its fork. Everything here is an array: the state can be donated to
    the compiled step, sharded over a mesh, checkpointed as one item, and stacked and vmapped to
    train a population of GANs. Module definitions and optimizers (functions, not data) live in
    `ganjax.train_step.GANDef`.

    Attributes:
      step: number of completed steps (one step = `n_critic` D updates and one G update), int32.
      rng: the run's base PRNG key (uint32[2]); each step uses `fold_in(rng, step)`, never a split
        carried along, so any step's randomness is a pure function of (rng, step).
      g_params: generator parameters.
      d_params: discriminator parameters.
      g_state: generator variable collections other than params (e.g. {'batch_stats': ...} for
        BatchNorm running statistics and spectral-norm vectors); {} when it has none.
      d_state: the same for the discriminator.
      g_opt_state: the generator optimizer's state.
      d_opt_state: the discriminator optimizer's state.
      ema_params: exponential moving average of `g_params`, used for samples and evaluation.
      hparams: the run's numeric hyperparameters as float32 / int32 scalars (learning rates, Adam
        betas, penalty weight, EMA decay, loss index, ...; see
        `ganjax.train_step.hparams_from_config`). They are data, not constants of the compiled
        step, so the members of a vmapped population can each have their own.
    """

    step: jax.Array
    rng: jax.Array
    g_params: PyTree
    d_params: PyTree
    g_state: PyTree
    d_state: PyTree
    g_opt_state: PyTree
    d_opt_state: PyTree
    ema_params: PyTree
    hparams: dict[str, jax.Array]


def stack(states: list[GANState]) -> GANState:
    """Stacks the states of a population's members along a new leading axis (for `jax.vmap`).

    Args:
      states: GANStates of one structure (same models and optimizers; any values).

    Returns:
      One GANState whose every leaf has a leading axis of size len(states).
    """
    return jax.tree.map(lambda *leaves: jax.numpy.stack(leaves), *states)


def member(state: GANState, index: int) -> GANState:
    """The state of member `index` of a stacked population."""
    return jax.tree.map(lambda leaf: leaf[index], state)
