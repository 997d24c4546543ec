"""Hyperparameters as data: a vmapped population of GANs, each member equal to its solo run."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import compose, optim, parallel, state as state_lib
from ganjax import train as train_lib
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state, hparams_from_config, make_train_step
from util import random_batch, tiny_config

VECTOR = (2,)
LOSSES = ('non_saturating', 'hinge', 'least_squares')
# Members differ in seed, learning rates, Adam beta1, EMA decay and loss: everything but the
# program's shape.
MEMBERS = [
    dict(seed=0, optim__g_lr=1e-3, optim__d_lr=2e-3, loss__name='non_saturating'),
    dict(seed=1, optim__g_lr=3e-4, optim__d_lr=1e-4, optim__b1=0.0, loss__name='hinge',
         ema__decay=0.9),
    dict(seed=2, optim__g_lr=5e-3, optim__d_lr=5e-4, loss__name='least_squares'),
    dict(seed=3, optim__g_lr=2e-3, optim__d_lr=1e-3, loss__name='hinge', optim__b2=0.9),
]
STEPS = 3


def _member_config(overrides):
    return tiny_config('mlp', train__n_critic=2, **overrides)


def _rel_err(a, b, atol=1e-6):
    """Norm-wise relative error of a leaf. A leaf that is a near-cancelling sum of O(1) terms
    (Adam's first moment of a bias) is held to an absolute 1e-6 per element instead: vmapped
    matmuls sum in another order than solo ones, a float32 rounding difference of the terms."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), atol * np.sqrt(b.size) / 1e-5)


def _batches():
    config = _member_config(MEMBERS[0])
    return [random_batch(config, VECTOR, seed=i) for i in range(STEPS)]


def test_vmapped_population_members_equal_their_solo_runs():
    batches = _batches()
    configs = [_member_config(m) for m in MEMBERS]
    # Solo: each member's own program, its loss the only one.
    solo = []
    for config in configs:
        gan = build_gan(config, VECTOR)
        state = create_state(config, gan)
        step = jax.jit(make_train_step(config, gan))
        for batch in batches:
            state, _ = step(state, batch)
        solo.append(jax.device_get(state))
    # Population: one program, the losses chosen per member by hparams['loss_index'].
    gan = build_gan(configs[0], VECTOR, loss_names=LOSSES)
    pop = state_lib.stack([create_state(c, gan) for c in configs])
    assert pop.hparams['loss_index'].tolist() == [0, 1, 2, 1]
    step = jax.jit(jax.vmap(make_train_step(configs[0], gan), in_axes=(0, None)))
    for batch in batches:
        pop, metrics = step(pop, batch)
    assert metrics['d_loss'].shape == (len(MEMBERS),)
    pop = jax.device_get(pop)
    for i, want in enumerate(solo):
        got = state_lib.member(pop, i)
        assert int(got.step) == STEPS
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
            assert a.shape == b.shape
            if 'loss_index' in jax.tree_util.keystr(path):
                continue  # an index into the population's losses; the solo run has one
            if np.issubdtype(np.asarray(b).dtype, np.floating):
                assert _rel_err(a, b) < 1e-5, f'member {i} {jax.tree_util.keystr(path)}'
            else:
                np.testing.assert_array_equal(a, b)
    # The members really differ (different seeds, rates and losses).
    assert _rel_err(solo[0].g_params['out']['kernel'], solo[1].g_params['out']['kernel']) > 0.1


@pytest.mark.parametrize('member_devices, members_per_pass', [(1, 0), (2, 0), (1, 3)])
def test_population_through_the_composition_point_on_8_devices(member_devices, members_per_pass):
    """compose.compile_step(population=True) on a sharded mesh (the batch over 8 devices, or the
    members over a 'member' axis of 2 and each member's batch over 4) equals the plain vmapped
    step, each member reading its own batches; so does looping over the members 3 at a time
    (members_per_pass, 4 members: a pass of 3 and one of 1)."""
    configs = [tiny_config('mlp', data__batch_size=16, parallel__num_devices=0,
                           sweep__member_devices=member_devices, **m) for m in MEMBERS]
    gan = build_gan(configs[0], VECTOR, loss_names=LOSSES)
    par = parallel.Parallel(configs[0], population=True)
    assert par.member_devices == member_devices
    batches = [{k: np.stack([random_batch(configs[0], VECTOR, seed=10 * i + m)[k]
                             for m in range(len(MEMBERS))]) for k in ('x', 'label')}
               for i in range(2)]
    pop = compose.init_population(gan, par, configs)
    fn = compose.compile_step(configs[0], gan, par, population=True,
                              members_per_pass=members_per_pass)
    ref = state_lib.stack([create_state(c, gan) for c in configs])
    ref_step = jax.jit(jax.vmap(make_train_step(configs[0], gan)))
    for batch in batches:
        pop, metrics = fn(pop, par.put_batch(batch, batch_axis=2, member_axis=0))
        ref, _ = ref_step(ref, batch)
    host = par.host_metrics(metrics)
    assert host['g_loss'].shape == (len(MEMBERS),)
    assert host[compose.DIVERGED].tolist() == [0] * len(MEMBERS)
    if member_devices > 1:
        assert pop.g_params['out']['kernel'].sharding.spec[0] == parallel.MEMBER_AXIS
    pop = jax.device_get(pop)
    for i in range(len(MEMBERS)):
        got, want = compose.solo_state(pop, i), state_lib.member(jax.device_get(ref), i)
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
            if 'loss_index' in jax.tree_util.keystr(path):
                continue
            if np.issubdtype(np.asarray(b).dtype, np.floating):
                assert _rel_err(a, b) < 1e-5, f'member {i} {jax.tree_util.keystr(path)}'


def test_a_diverging_member_is_frozen_and_the_others_train_on():
    """A member whose update goes non-finite keeps its last finite state for good (its step
    counter too) and records the step; the other members' updates are unchanged."""
    configs = [tiny_config('mlp', **MEMBERS[0]),
               tiny_config('mlp', seed=1, optim__g_lr=1e30, optim__d_lr=1e30)]
    gan = build_gan(configs[0], VECTOR)
    par = parallel.Parallel(configs[0], population=True)
    fn = jax.jit(compose.population_step(make_train_step(configs[0], gan)))
    pop = state_lib.stack([compose.population_member_state(c, gan) for c in configs])
    solo_step = jax.jit(make_train_step(configs[0], gan))
    solo = create_state(configs[0], gan)
    history = []
    for i in range(4):
        batch = random_batch(configs[0], VECTOR, seed=i)
        before = jax.device_get(pop)
        pop, metrics = fn(pop, {k: np.stack([v, v]) for k, v in batch.items()})
        solo, _ = solo_step(solo, batch)
        history.append((before, jax.device_get(pop), jax.device_get(metrics)))
    del par
    pop = jax.device_get(pop)
    frozen_at = int(pop.hparams[compose.DIVERGED][1])
    assert 1 <= frozen_at <= 3, 'the huge learning rate must overflow within a few steps'
    # Frozen: the state of step frozen_at - 1, finite, and never changed after.
    assert int(pop.step[1]) == frozen_at - 1 and int(pop.step[0]) == 4
    for leaf in jax.tree.leaves(compose.solo_state(pop, 1)):
        assert np.all(np.isfinite(leaf))
    for before, after, metrics in history[frozen_at:]:
        chex.assert_trees_all_equal(state_lib.member(before, 1), state_lib.member(after, 1))
        assert metrics[compose.DIVERGED].tolist() == [0, frozen_at]
    # The healthy member equals its run alone.
    for a, b in zip(jax.tree.leaves(compose.solo_state(pop, 0)),
                    jax.tree.leaves(jax.device_get(solo))):
        if np.issubdtype(np.asarray(b).dtype, np.floating):
            assert _rel_err(a, b) < 1e-5


def test_hparams_come_from_the_config_and_reach_the_optimizer():
    config = tiny_config('mlp', optim__g_lr=1e-3, optim__d_lr=4e-4, optim__b1=0.3,
                         penalty__weight=2.5, ema__decay=0.95, loss__name='hinge')
    gan = build_gan(config, VECTOR, loss_names=LOSSES)
    hp = jax.device_get(hparams_from_config(config, gan))
    assert hp['loss_index'] == 1 and hp['loss_index'].dtype == np.int32
    np.testing.assert_allclose([hp['g_lr'], hp['d_lr'], hp['b1'], hp['penalty_weight'],
                                hp['ema_decay']], [1e-3, 4e-4, 0.3, 2.5, 0.95], rtol=1e-6)
    state = create_state(config, gan)
    np.testing.assert_allclose(state.d_opt_state.hyperparams['learning_rate'], 4e-4, rtol=1e-6)
    with pytest.raises(ConfigError, match="loss.name='hinge' is not among the losses"):
        build_gan(config, VECTOR, loss_names=('non_saturating',))


def test_the_step_reads_learning_rates_from_the_state_not_the_config():
    """Writing another learning rate into state.hparams changes the update; the program is the
    same (one compiled function serves both)."""
    config = tiny_config('mlp', optim__name='sgd', optim__b1=0.0, optim__g_lr=0.1,
                         optim__d_lr=0.1)
    gan = build_gan(config, VECTOR)
    step = jax.jit(make_train_step(config, gan))
    batch = random_batch(config, VECTOR)
    s0 = create_state(config, gan)
    half = s0.replace(hparams={**s0.hparams, 'd_lr': jnp.float32(0.05)})
    a, _ = step(s0, batch)
    b, _ = step(half, batch)
    assert step._cache_size() == 1
    da = jax.tree.map(lambda new, old: new - old, a.d_params, s0.d_params)
    db = jax.tree.map(lambda new, old: new - old, b.d_params, s0.d_params)
    for x, y in zip(jax.tree.leaves(da), jax.tree.leaves(db)):
        np.testing.assert_allclose(y, 0.5 * x, rtol=1e-4, atol=1e-7)


def _linear_config(num_steps, schedule_steps=0):
    return tiny_config('mlp', optim__schedule='linear', optim__schedule_steps=schedule_steps,
                       train__num_steps=num_steps, train__checkpoint_every=2,
                       train__log_every=2, train__sample_every=100, data__name='ring8')


@pytest.mark.slow
def test_schedule_length_is_fixed_at_the_start_of_a_run(tmp_path):
    # Unit level: an explicit length wins over train.num_steps.
    config = _linear_config(num_steps=10, schedule_steps=4)
    assert optim.schedule_steps(config) == 4
    assert optim.schedule_steps(_linear_config(num_steps=10)) == 10
    # A run started with num_steps=4 and resumed with num_steps=6 keeps the 4-step schedule: it
    # ends equal to an uninterrupted 6-step run whose schedule is 4 steps long.
    resumed = str(tmp_path / 'resumed')
    train_lib.train_and_evaluate(_linear_config(num_steps=4), resumed)
    with open(os.path.join(resumed, 'config.json')) as f:
        assert json.load(f)['optim']['schedule_steps'] == 4
    a = train_lib.train_and_evaluate(_linear_config(num_steps=6), resumed)
    b = train_lib.train_and_evaluate(_linear_config(num_steps=6, schedule_steps=4),
                                     str(tmp_path / 'straight'))
    for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))):
        np.testing.assert_array_equal(x, y)
    # After 4 steps the schedule is at 0: G no longer moves.
    c = train_lib.train_and_evaluate(_linear_config(num_steps=4, schedule_steps=4),
                                     str(tmp_path / 'four'))
    for x, y in zip(jax.tree.leaves(c.g_params), jax.tree.leaves(b.g_params)):
        np.testing.assert_array_equal(x, y)
