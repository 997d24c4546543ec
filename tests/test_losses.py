"""Every loss against values worked out by hand, plus gradients and numerical stability."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ganjax import losses
from ganjax.errors import ConfigError

REAL = [1.0, -2.0]
FAKE = [0.5, -1.0]


def _naive_sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _mean(values):
    return sum(values) / len(values)


def _by_hand():
    """Expected (d_loss, g_loss, d_real, d_fake) for REAL and FAKE, from the papers' formulas."""
    s = _naive_sigmoid
    log = math.log
    bce_real = _mean([-log(s(r)) for r in REAL])
    bce_fake = _mean([-log(1 - s(f)) for f in FAKE])
    mr, mf = _mean(REAL), _mean(FAKE)  # -0.5, -0.25
    r_rel = [r - mf for r in REAL]  # [1.25, -1.75]
    f_rel = [f - mr for f in FAKE]  # [1.0, -0.5]
    ras_d_real = _mean([-log(s(v)) for v in r_rel])
    ras_d_fake = _mean([-log(1 - s(v)) for v in f_rel])
    ras_g = _mean([-log(s(v)) for v in f_rel]) + _mean([-log(1 - s(v)) for v in r_rel])
    return {
        'minimax': (bce_real + bce_fake, _mean([log(1 - s(f)) for f in FAKE]), bce_real, bce_fake),
        'non_saturating': (bce_real + bce_fake, _mean([-log(s(f)) for f in FAKE]), bce_real,
                           bce_fake),
        # d_real = -mean(r) = 0.5, d_fake = mean(f) = -0.25, g = -mean(f) = 0.25
        'wasserstein': (0.25, 0.25, 0.5, -0.25),
        # d_real = mean(relu(0), relu(3)) = 1.5, d_fake = mean(relu(1.5), relu(0)) = 0.75
        'hinge': (2.25, 0.25, 1.5, 0.75),
        # d_real = .5 * mean(0, 9) = 2.25, d_fake = .5 * mean(.25, 1) = .3125,
        # g = .5 * mean(.25, 4) = 1.0625
        'least_squares': (2.5625, 1.0625, 2.25, 0.3125),
        'relativistic_average': (ras_d_real + ras_d_fake, ras_g, ras_d_real, ras_d_fake),
        # r_rel = [1.25, -1.75], f_rel = [1, -.5]: d_real = mean(.0625, 7.5625) = 3.8125,
        # d_fake = mean(4, .25) = 2.125, g = mean(5.0625, .5625) + mean(0, 2.25) = 3.9375
        'relativistic_average_ls': (5.9375, 3.9375, 3.8125, 2.125),
    }


def test_table_is_covered_by_hand_values():
    assert set(_by_hand()) == set(losses.LOSSES)


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_values_by_hand(name):
    d_loss, g_loss, aux = jax.jit(losses.get_loss(name))(jnp.array(REAL), jnp.array(FAKE))
    want_d, want_g, want_real, want_fake = _by_hand()[name]
    np.testing.assert_allclose(float(d_loss), want_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(g_loss), want_g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(aux['d_real']), want_real, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(aux['d_fake']), want_fake, rtol=1e-5, atol=1e-6)
    # One aux structure for every loss (a population switches losses by index).
    assert tuple(sorted(aux)) == tuple(sorted(losses.AUX_KEYS))
    np.testing.assert_allclose(float(aux['g_real'] + aux['g_fake']), want_g, rtol=1e-5)


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_gradients_match_finite_differences(name):
    fn = losses.get_loss(name)
    # Points away from the hinge's kinks at +-1.
    real = jnp.array([0.3, -0.7, 1.6])
    fake = jnp.array([-0.2, 0.4, -1.8])
    check_grads(lambda r, f: fn(r, f)[0], (real, fake), order=1, modes=['rev'], atol=2e-2,
                rtol=2e-2, eps=1e-2)
    check_grads(lambda r, f: fn(r, f)[1], (real, fake), order=1, modes=['rev'], atol=2e-2,
                rtol=2e-2, eps=1e-2)


def test_non_saturating_gradients_by_hand():
    # d/df of mean(softplus(-f)) = -sigmoid(-f) / B; d/dr of D's loss = -sigmoid(-r) / B.
    real, fake = jnp.array(REAL), jnp.array(FAKE)
    g_grad = jax.grad(lambda f: losses.non_saturating(real, f)[1])(fake)
    np.testing.assert_allclose(g_grad, [-_naive_sigmoid(-f) / 2 for f in FAKE], rtol=1e-5)
    d_grad = jax.grad(lambda r: losses.non_saturating(r, fake)[0])(real)
    np.testing.assert_allclose(d_grad, [-_naive_sigmoid(-r) / 2 for r in REAL], rtol=1e-5)


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_stable_for_extreme_logits(name):
    fn = losses.get_loss(name)
    real = jnp.array([1e4, -1e4, 300.0, -300.0], jnp.float32)
    fake = jnp.array([-1e4, 1e4, -300.0, 300.0], jnp.float32)
    out = fn(real, fake)
    grads = jax.grad(lambda r, f: fn(r, f)[0] + fn(r, f)[1], argnums=(0, 1))(real, fake)
    for leaf in jax.tree.leaves((out, grads)):
        assert np.all(np.isfinite(np.asarray(leaf))), name


def test_bfloat16_logits_give_float32_losses():
    d_loss, g_loss, _ = losses.hinge(jnp.array(REAL, jnp.bfloat16), jnp.array(FAKE, jnp.bfloat16))
    assert d_loss.dtype == jnp.float32 and g_loss.dtype == jnp.float32


def test_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match='hinge'):
        losses.get_loss('hinj')
