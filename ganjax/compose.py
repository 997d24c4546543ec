"""The one place where the pure training step becomes a compiled program.

    make_train_step(config, gan)              pure per-GAN step (ganjax.train_step)
      -> jax.vmap over a population axis      (population=True: members differ in state.hparams,
                                               each reads its own batch; a non-finite update
                                               freezes its member, `population_step`)
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
from jax import lax
from ml_collections import ConfigDict

from ganjax import parallel as parallel_lib
from ganjax import state as state_lib
from ganjax.errors import ConfigError
from ganjax.train_step import GANDef, create_state, make_multi_step, make_train_step


def _gather(data: dict[str, jax.Array], indices: jax.Array) -> dict[str, jax.Array]:
    return {k: jnp.take(v, indices, axis=0) for k, v in data.items()}


def compile_step(config: ConfigDict, gan: GANDef, par: parallel_lib.Parallel, *,
                 steps_per_call: int = 1, on_device: bool = False,
                 population: bool = False, members_per_pass: int = 0) -> Callable:
    """Composes and compiles the training step for a layout.

    Args:
      config: the run config.
      gan: from `ganjax.train_step.build_gan`.
      par: the device layout.
      steps_per_call: k > 1 runs k steps per call in a `lax.scan`.
      on_device: the step takes (state, put_dataset(data), indices) instead of (state, batch).
      population: the state has a leading member axis (`init_population`) and the step is
        vmapped over it; the batch (or indices) has a member axis too, in front of the
        n_critic axis, so each member reads its own data order; a member whose update goes
        non-finite is frozen (`population_step`).
      members_per_pass: with `population`, how many members each pass vmaps (0 = all; see
        `population_step`).

    Returns:
      `f(state, batch) -> (state, metrics)` or `f(state, data, indices) -> ...`, where batch is
      `par.put_batch` of {'x': [(k,) (P,) n_critic, local batch, *data_shape], 'label': ...} and
      indices is `par.put_indices` of [(k,) (P,) n_critic, global batch] (P: members of a
      population); the state argument is donated. Metrics are device arrays ([P] per metric for
      a population); read them with `par.host_metrics`.

    Raises:
      ConfigError: for a population under pmap.
    """
    pmap = par.strategy == 'pmap'
    if population and pmap:
        raise ConfigError('a population of GANs is compiled with parallel.strategy="jit"')
    step = make_train_step(config, gan, axis_name=parallel_lib.DATA_AXIS if pmap else None,
                           constrain=None if pmap else par.constrain)
    if population:
        # Each member's state, hyperparameters, randomness and data order are its own: it
        # trains as it would alone.
        step = population_step(step, spmd_axis_name=par.member_axis,
                               members_per_pass=members_per_pass)
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
    if population:
        # A member's leaves are split as in a single run; the member axis over the mesh's
        # 'member' axis when it has one.
        state_sh = par.state_shardings(jax.eval_shape(lambda: state_lib.stack(
            [population_member_state(config, gan)])), leading=1)
    else:
        state_sh = par.state_shardings(jax.eval_shape(lambda: create_state(config, gan)))
    return jax.jit(body, out_shardings=(state_sh, par.replicated), donate_argnums=0,
                   compiler_options=parallel_lib.cpu_conv_compiler_options(
                       par.devices[0].platform))


#: `GANState.hparams` key of a population member: 0 while it trains, else the step whose update
#: went non-finite (the member is frozen at the state before it).
DIVERGED = 'diverged_at'


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def population_step(step: Callable, spmd_axis_name: str | None = None,
                    members_per_pass: int = 0) -> Callable:
    """A member's step vmapped over a population, where a non-finite update freezes its member.

    A member's update is kept only if the member is not frozen and its metrics and new
    parameters, optimizer and EMA states are all finite; otherwise its state stays the one
    before, and `hparams[DIVERGED]` records the step whose update failed. A frozen member keeps
    being computed (a vmapped program runs every member) but never changes again, so the others
    train on and the frozen one keeps its last finite state.

    While every member's update is kept (the common case) the new states pass through as they
    are: the per-member select that reverts a member runs under a `lax.cond` only when some
    member is frozen or diverges. Selecting every leaf of every member each step cost 20% of the
    ring MLP population's throughput on this CPU.

    Args:
      step: a member's `step(state, batch) -> (state, metrics)`; the state's hparams hold
        DIVERGED (int32, 0 = training).
      spmd_axis_name: the mesh axis the members are split over (`jax.vmap`'s), or None.
      members_per_pass: 0 vmaps all members at once; n > 0 runs them n at a time in a loop
        (`lax.map`, each pass vmapped over n), so that only n members' activations are live at
        once. On the 2-core CPU the loop was slower, not faster, for the MNIST DCGAN (0.21x
        the sequential runs' steady rate at K=4 against 0.59x vmapped; benchmarks/README.md).

    Returns:
      `step(stacked state, batches) -> (stacked state, metrics)` over a leading member axis; the
      metrics add DIVERGED (each member's value after this step, float32).
    """

    def member(state, batch):
        new, metrics = step(state, batch)
        finite = _all_finite(metrics) & _all_finite(
            (new.g_params, new.d_params, new.g_opt_state, new.d_opt_state, new.ema_params))
        return new, metrics, finite

    if members_per_pass:
        if spmd_axis_name is not None:
            raise ConfigError('sweep.members_per_pass > 0 needs sweep.member_devices=1 (the '
                              'members loop on each device)')

        def vmapped(state, batch):
            return lax.map(lambda args: member(*args), (state, batch),
                           batch_size=None if members_per_pass == 1 else members_per_pass)
    else:
        vmapped = jax.vmap(member, spmd_axis_name=spmd_axis_name)

    def guarded(state, batch):
        new, metrics, finite = vmapped(state, batch)
        frozen = state.hparams[DIVERGED] > 0
        keep = finite & ~frozen

        def revert(new, state):
            def select(a, b):
                return jnp.where(keep.reshape(keep.shape + (1,) * (a.ndim - 1)), a, b)
            return jax.tree.map(select, new, state)

        out = lax.cond(jnp.all(keep), lambda new, state: new, revert, new, state)
        diverged = jnp.where(frozen | finite, state.hparams[DIVERGED],
                             state.step + 1).astype(jnp.int32)
        out = out.replace(hparams={**out.hparams, DIVERGED: diverged})
        return out, {**metrics, DIVERGED: diverged.astype(jnp.float32)}

    return guarded


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
      The stacked GANState, laid out for `compile_step(..., population=True)`; each member's
      hparams add DIVERGED = 0.
    """
    def make():
        return state_lib.stack([population_member_state(c, gan) for c in member_configs])

    return par.init_state(make, leading=1)


def population_member_state(config: ConfigDict, gan: GANDef) -> Any:
    """A member's initial state in a population: its own run's, with hparams[DIVERGED] = 0."""
    state = create_state(config, gan)
    return state.replace(hparams={**state.hparams, DIVERGED: jnp.zeros((), jnp.int32)})


def solo_state(state: Any, index: int) -> Any:
    """Member `index` of a stacked population state, as its own run's state.

    The population's bookkeeping leaves (DIVERGED) go, and the loss index becomes 0: a run
    alone has its own loss only (`build_gan(member_config)`).

    Args:
      state: the stacked GANState (host or device arrays).
      index: the member's position in it.

    Returns:
      A GANState of the structure `create_state(member_config, build_gan(member_config))` has.
    """
    one = state_lib.member(state, index)
    hparams = {k: v for k, v in one.hparams.items() if k != DIVERGED}
    hparams['loss_index'] = jnp.zeros((), jnp.int32)
    return one.replace(hparams=hparams)
