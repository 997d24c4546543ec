"""The one place where the pure training step becomes a compiled program.

    make_train_step(config, gan)              pure per-GAN step (ganjax.train_step)
      -> jax.vmap over a population axis      (population=True: members differ in state.hparams)
      -> lax.scan over k steps per call       (steps_per_call > 1)
      -> batch gathered from on-device data   (on_device=True: only indices travel)
      -> jax.jit with the layout's shardings  (or jax.pmap, the comparison path)

Everything device-specific comes from `ganjax.parallel.Parallel`; nothing here knows a loss or a
model, and the step knows no device.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import ConfigDict

from ganjax import parallel as parallel_lib
from ganjax import state as state_lib
from ganjax.errors import ConfigError
from ganjax.train_step import GANDef, create_state, make_multi_step, make_train_step


def _gather(data: dict[str, jax.Array], indices: jax.Array) -> dict[str, jax.Array]:
    return {k: jnp.take(v, indices, axis=0) for k, v in data.items()}


def compile_step(config: ConfigDict, gan: GANDef, par: parallel_lib.Parallel, *,
                 steps_per_call: int = 1, on_device: bool = False,
                 population: bool = False) -> Callable:
    """Composes and compiles the training step for a layout.

    Args:
      config: the run config.
      gan: from `ganjax.train_step.build_gan`.
      par: the device layout.
      steps_per_call: k > 1 runs k steps per call in a `lax.scan`.
      on_device: the step takes (state, put_dataset(data), indices) instead of (state, batch).
      population: the state has a leading member axis (`ganjax.state.stack`) and the step is
        vmapped over it; every member trains on the same batches.

    Returns:
      `f(state, batch) -> (state, metrics)` or `f(state, data, indices) -> ...`, where batch is
      `par.put_batch` of {'x': [(k,) n_critic, local batch, *data_shape], 'label': ...} and
      indices is `par.put_indices` of [(k,) n_critic, global batch]; the state argument is
      donated. Metrics are device arrays ([P] per metric for a population); read them with
      `par.host_metrics`.

    Raises:
      ConfigError: for a population under pmap.
    """
    pmap = par.strategy == 'pmap'
    if population and pmap:
        raise ConfigError('a population of GANs is compiled with parallel.strategy="jit"')
    step = make_train_step(config, gan, axis_name=parallel_lib.DATA_AXIS if pmap else None,
                           constrain=None if pmap else par.constrain)
    if population:
        # One batch for every member; each member's state, hyperparameters and randomness are
        # its own.
        step = jax.vmap(step, in_axes=(0, None))
    if steps_per_call > 1:
        step = make_multi_step(step)

    if on_device:
        def body(state, data, indices):
            return step(state, _gather(data, indices))
    else:
        body = step

    if pmap:
        return jax.pmap(body, axis_name=parallel_lib.DATA_AXIS, devices=par.devices,
                        donate_argnums=0)
    state_sh = par.state_shardings(jax.eval_shape(lambda: create_state(config, gan)))
    if population:
        # A member's leaves are split as in a single run; the member axis is not split.
        state_sh = jax.tree.map(lambda s: NamedSharding(s.mesh, P(None, *s.spec)), state_sh)
    return jax.jit(body, out_shardings=(state_sh, par.replicated), donate_argnums=0,
                   compiler_options=parallel_lib.cpu_conv_compiler_options(
                       par.devices[0].platform))


def init_population(gan: GANDef, par: parallel_lib.Parallel,
                    member_configs: list[ConfigDict]) -> Any:
    """Initialises a population's stacked state in the layout (each member from its own config).

    Args:
      gan: from `build_gan` (with every member's loss in `loss_names`).
      par: the device layout.
      member_configs: one config per member; they may differ in seed and in the numeric
        hyperparameters of `ganjax.train_step.hparams_from_config`, not in anything that
        changes the program's shape.

    Returns:
      The stacked GANState, laid out for `compile_step(..., population=True)`.
    """
    def make():
        return state_lib.stack([create_state(c, gan) for c in member_configs])

    return par.init_state(make, leading=1)
