"""Game dynamics (`train.updates`) and optimistic Adam: each checked against arithmetic by hand,
on a toy game whose behaviour is known, and inside a vmapped population."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import dynamics, losses, state as state_lib
from ganjax.errors import ConfigError
from ganjax.train_step import (apply_module, build_gan, create_state, make_train_step,
                               sample_latent)
from util import random_batch, tiny_config

VECTOR = (2,)
G_LR, D_LR = 0.05, 0.1  # different, so that a player's rate used for the other would show


def _sgd_config(updates):
    # Plain SGD, no normalisation layers (no collections), no penalty: the step's arithmetic is
    # that of the formulas below.
    return tiny_config('mlp', train__updates=updates, optim__name='sgd', optim__b1=0.0,
                       optim__g_lr=G_LR, optim__d_lr=D_LR, model__g_norm='none',
                       model__d_norm='none', ema__decay=0.0)


class _ByHand:
    """The players' gradients of the non-saturating loss on the step's draws, written from the
    definitions: D's on its fakes z_d, G's on its fakes z_g, against any pair of parameters."""

    def __init__(self, gan, state, x):
        self.gan, self.x = gan, jnp.asarray(x)
        # The step's random draws: key = fold_in(rng, step) -> (k_d, k_g); the i-th D update
        # draws its codes from the first half of fold_in(k_d, i).
        k_d, k_g = jax.random.split(jax.random.fold_in(state.rng, state.step))
        k_z, _ = jax.random.split(jax.random.fold_in(k_d, 0))
        b = self.x.shape[0]
        self.z_d = sample_latent(k_z, b, gan.latent_dim)
        self.z_g = sample_latent(k_g, b, gan.latent_dim)

    def _logits(self, d, v):
        return apply_module(self.gan.discriminator, d, {}, v, train=True)[0]['logit']

    def _fake(self, g, z):
        return apply_module(self.gan.generator, g, {}, z, train=True)[0]

    def d_loss(self, g, d):
        fake = jax.lax.stop_gradient(self._fake(g, self.z_d))
        return losses.non_saturating(self._logits(d, self.x), self._logits(d, fake))[0]

    def g_loss(self, g, d):
        return losses.non_saturating(self._logits(d, self.x),
                                     self._logits(d, self._fake(g, self.z_g)))[1]

    def grads(self, g, d):
        """(G's gradient, D's gradient) at (g, d)."""
        # Compiled once for the four points below: faster than running op by op.
        return jax.jit(lambda g, d: (jax.grad(self.g_loss)(g, d),
                                     jax.grad(self.d_loss, argnums=1)(g, d)))(g, d)


def _sgd(params, grads, lr):
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def _assert_close(got, want, rtol=1e-5, atol=1e-7):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _differ(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))) > 1e-6


def test_simultaneous_and_extragradient_steps_equal_the_updates_by_hand():
    """Simultaneous: D's update as in the alternating step, G's gradient against the D the step
    started from. Extragradient: both players extrapolate with SGD, and the gradients at the
    extrapolated point move the current parameters. Metrics are those at the current point."""
    config = _sgd_config('simultaneous')
    gan = build_gan(config, VECTOR)
    state = jax.device_get(create_state(config, gan))
    batch = random_batch(config, VECTOR)
    hand = _ByHand(gan, state, batch['x'][0])
    g, d = state.g_params, state.d_params
    g_grad, d_grad = hand.grads(g, d)

    sim, sim_metrics = jax.jit(make_train_step(config, gan))(state, batch)
    _assert_close(sim.d_params, _sgd(d, d_grad, D_LR))
    _assert_close(sim.g_params, _sgd(g, g_grad, G_LR))
    np.testing.assert_allclose(sim_metrics['g_loss'], hand.g_loss(g, d), rtol=1e-5)

    # The alternating step takes G's gradient against the updated D: another update.
    alt, _ = jax.jit(make_train_step(_sgd_config('alternating'), gan))(state, batch)
    _assert_close(alt.d_params, sim.d_params)
    assert _differ(alt.g_params, sim.g_params)
    _assert_close(alt.g_params, _sgd(g, hand.grads(g, sim.d_params)[0], G_LR))

    extra, metrics = jax.jit(make_train_step(_sgd_config('extragradient'), gan))(state, batch)
    g_bar, d_bar = _sgd(g, g_grad, G_LR), _sgd(d, d_grad, D_LR)
    g_grad_bar, d_grad_bar = hand.grads(g_bar, d_bar)
    _assert_close(extra.g_params, _sgd(g, g_grad_bar, G_LR))
    _assert_close(extra.d_params, _sgd(d, d_grad_bar, D_LR))
    assert _differ(extra.g_params, sim.g_params)
    np.testing.assert_allclose(metrics['d_loss'], hand.d_loss(g, d), rtol=1e-5)
    np.testing.assert_allclose(metrics['g_loss'], hand.g_loss(g, d), rtol=1e-5)
    assert int(extra.step) == 1


def _bilinear_grads(params):
    # min_x max_y x * y: x descends y, y ascends x (descends -x). The equilibrium is (0, 0).
    x, y = params
    return (y, -x), None


def test_extragradient_converges_on_the_bilinear_game_where_simultaneous_descent_spirals_out():
    lr, steps = 0.1, 500
    txs = (optax.sgd(lr), optax.sgd(lr))
    start = (jnp.float32(1.0), jnp.float32(1.0))

    def extragradient(carry, _):
        params, opt_states = carry
        params, opt_states, _, _ = dynamics.extragradient_step(_bilinear_grads, params,
                                                               opt_states, txs)
        return (params, opt_states), jnp.hypot(*params)

    def simultaneous(params, _):
        grads, _ = _bilinear_grads(params)
        params = tuple(p - lr * g for p, g in zip(params, grads))
        return params, jnp.hypot(*params)

    init = (start, tuple(tx.init(p) for tx, p in zip(txs, start)))
    _, eg = jax.lax.scan(extragradient, init, length=steps)
    _, sim = jax.lax.scan(simultaneous, start, length=steps)
    r0 = float(np.hypot(1.0, 1.0))
    # Per step, extragradient shrinks the distance by sqrt(1 - lr^2 + lr^4) < 1 and simultaneous
    # descent grows it by sqrt(1 + lr^2) > 1.
    assert np.all(np.diff(np.asarray(eg)) < 0) and np.all(np.diff(np.asarray(sim)) > 0)
    np.testing.assert_allclose(eg[-1], r0 * np.sqrt(1 - lr**2 + lr**4) ** steps, rtol=1e-3)
    assert eg[-1] < 0.1 * r0 and sim[-1] > 10 * r0


def test_optimistic_adam_reads_its_hyperparameters_from_the_state():
    """optimism = 0 is Adam; the paper's optimism = 1 is the same first step (r_0 = r_1) and a
    different second one. The optimism and learning rates come from state.hparams."""
    config = tiny_config('mlp', optim__name='optimistic_adam', optim__optimism=0.5,
                         optim__g_lr=1e-2, optim__d_lr=2e-2)
    gan = build_gan(config, VECTOR)
    state = create_state(config, gan)
    assert float(state.hparams['optimism']) == 0.5
    assert float(state.g_opt_state.hyperparams['optimism']) == 0.5
    batches = [random_batch(config, VECTOR, seed=i) for i in range(2)]
    step = jax.jit(make_train_step(config, gan))

    def run(s, n=2):
        for batch in batches[:n]:
            s, metrics = step(s, batch)
        assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
        return jax.device_get(s)

    as_adam = run(state.replace(hparams={**state.hparams, 'optimism': jnp.float32(0.0)}))
    optimistic_1 = run(state, n=1)
    optimistic = run(state)
    assert step._cache_size() == 1

    adam_config = tiny_config('mlp', optim__name='adam', optim__g_lr=1e-2, optim__d_lr=2e-2)
    adam_gan = build_gan(adam_config, VECTOR)
    adam_state = create_state(adam_config, adam_gan)
    assert 'optimism' not in adam_state.hparams  # other optimizers' states keep their structure
    adam_step = jax.jit(make_train_step(adam_config, adam_gan))
    adam_1, _ = adam_step(adam_state, batches[0])
    adam, _ = adam_step(adam_1, batches[1])
    _assert_close(as_adam.g_params, adam.g_params, rtol=1e-5, atol=1e-6)
    _assert_close(as_adam.d_params, adam.d_params, rtol=1e-5, atol=1e-6)
    _assert_close(optimistic_1.g_params, adam_1.g_params, rtol=1e-5, atol=1e-6)
    assert _differ(optimistic.g_params, adam.g_params)
    assert _differ(optimistic.d_params, adam.d_params)


def test_dynamics_config_errors():
    with pytest.raises(ConfigError, match="train.updates='extragradient' needs train.n_critic=1"):
        tiny_config('mlp', train__updates='extragradient', train__n_critic=2)
    with pytest.raises(ConfigError, match=r"train.updates='alternate' is not one of .*did you "
                                          r"mean alternating"):
        tiny_config('mlp', train__updates='alternate')
    with pytest.raises(ConfigError, match='optim.optimism must be >= 0'):
        tiny_config('mlp', optim__name='optimistic_adam', optim__optimism=-1.0)
    config = tiny_config('mlp')
    config.train.updates, config.train.n_critic = 'extragradient', 3
    with pytest.raises(ConfigError, match='needs train.n_critic=1, got 3'):
        make_train_step(config, build_gan(tiny_config('mlp'), VECTOR))


# Two members that differ in seed and learning rates (and optimism). The alternating updates are
# tests/test_population.py's case.
_POPULATION_CASES = {
    'simultaneous': dict(train__n_critic=2, optim__name='sgd', optim__b1=0.5),
    'extragradient': dict(optim__name='optimistic_adam'),
}


@pytest.mark.parametrize('updates', [
    'simultaneous',
    # Two extragradient programs (each twice the gradient work) take ~16 s to compile here.
    pytest.param('extragradient', marks=pytest.mark.slow)])
def test_a_population_under_each_dynamics_equals_its_solo_runs(updates):
    members = [dict(seed=0, optim__g_lr=1e-3, optim__d_lr=2e-3, optim__optimism=1.0),
               dict(seed=1, optim__g_lr=3e-4, optim__d_lr=1e-3, optim__optimism=0.5)]
    configs = [tiny_config('mlp', train__updates=updates, **_POPULATION_CASES[updates], **m)
               for m in members]
    gan = build_gan(configs[0], VECTOR)
    batches = [random_batch(configs[0], VECTOR, seed=i) for i in range(2)]
    # The members' programs are the same (their numbers are state), so one compiled step serves
    # both solo runs.
    solo_step = jax.jit(make_train_step(configs[0], gan))
    solo = []
    for config in configs:
        s = create_state(config, gan)
        for batch in batches:
            s, _ = solo_step(s, batch)
        solo.append(jax.device_get(s))
    pop = state_lib.stack([create_state(c, gan) for c in configs])
    pop_step = jax.jit(jax.vmap(make_train_step(configs[0], gan), in_axes=(0, None)))
    for batch in batches:
        pop, _ = pop_step(pop, batch)
    pop = jax.device_get(pop)
    for i, want in enumerate(solo):
        got = state_lib.member(pop, i)
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
            a, b = np.asarray(a), np.asarray(b)
            if np.issubdtype(b.dtype, np.floating):
                # Norm-wise, with an absolute floor for near-cancelling leaves (vmapped matmuls
                # sum in another order; see tests/test_population.py).
                err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 0.1 * np.sqrt(b.size))
                assert err < 1e-5, f'{updates} member {i} {jax.tree_util.keystr(path)}'
            else:
                np.testing.assert_array_equal(a, b)
    assert _differ(solo[0].g_params, solo[1].g_params)
