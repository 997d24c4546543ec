"""Every penalty against an independent computation on discriminators with known gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import penalties
from ganjax.errors import ConfigError

RNG = jax.random.PRNGKey(0)
B, SHAPE = 4, (3, 2)


def _data(seed):
    return np.random.default_rng(seed).normal(size=(B,) + SHAPE).astype(np.float32)


W = _data(7)[0]  # weights of the linear critic; its input gradient is W everywhere


def linear_d(w):
    return lambda x: jnp.sum(x * w, axis=(1, 2))


def quadratic_d(x):
    # D(x) = 1/2 ||x||^2 per example, so grad D(x) = x.
    return 0.5 * jnp.sum(jnp.square(x), axis=(1, 2))


def test_table_is_covered():
    assert set(penalties.PENALTIES) == {'none', 'wgan_gp', 'wgan_gp_one_sided', 'r1', 'r2',
                                        'dragan'}


@pytest.mark.parametrize('name', sorted(penalties.PENALTIES))
def test_linear_critic_closed_form(name):
    """With grad D = w everywhere, every penalty has a closed form independent of the points."""
    norm = float(np.sqrt(np.sum(W.astype(np.float64) ** 2)))
    expected = {
        'none': 0.0,
        'wgan_gp': (norm - 1.0) ** 2,
        'wgan_gp_one_sided': max(norm - 1.0, 0.0) ** 2,
        'dragan': (norm - 1.0) ** 2,
        'r1': 0.5 * norm ** 2,
        'r2': 0.5 * norm ** 2,
    }[name]
    fn = jax.jit(lambda r, f, k: penalties.get_penalty(name)(linear_d(W), r, f, k))
    np.testing.assert_allclose(float(fn(_data(1), _data(2), RNG)), expected, rtol=1e-5,
                               atol=1e-6)


def test_one_sided_ignores_small_gradients():
    w_small = W / (2 * np.sqrt(np.sum(W ** 2)))  # norm 1/2: the one-sided penalty is zero
    value = penalties.wgan_gp_one_sided(linear_d(w_small), _data(1), _data(2), RNG)
    assert float(value) == 0.0
    two_sided = penalties.wgan_gp(linear_d(w_small), _data(1), _data(2), RNG)
    np.testing.assert_allclose(float(two_sided), 0.25, rtol=1e-5)


def test_r1_r2_quadratic_critic():
    real, fake = _data(1), _data(2)
    want_r1 = 0.5 * np.mean(np.sum(real.astype(np.float64) ** 2, axis=(1, 2)))
    want_r2 = 0.5 * np.mean(np.sum(fake.astype(np.float64) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(float(penalties.r1(quadratic_d, real, fake, RNG)), want_r1,
                               rtol=1e-5)
    np.testing.assert_allclose(float(penalties.r2(quadratic_d, real, fake, RNG)), want_r2,
                               rtol=1e-5)


def test_gp_quadratic_critic_at_the_data():
    # With real == fake every interpolate is the data point itself, whatever the random weight.
    x = _data(3)
    norms = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(float(penalties.wgan_gp(quadratic_d, x, x, RNG)),
                               np.mean((norms - 1) ** 2), rtol=1e-5)
    np.testing.assert_allclose(float(penalties.wgan_gp_one_sided(quadratic_d, x, x, RNG)),
                               np.mean(np.maximum(norms - 1, 0) ** 2), rtol=1e-5)


def test_interpolates_lie_between_real_and_fake():
    real, fake = _data(1), _data(2)
    seen = []
    for seed in range(20):
        x_hat = penalties._interpolate(real, fake, jax.random.PRNGKey(seed))
        t = (np.asarray(x_hat) - fake) / (real - fake)
        # Each example uses one weight for all its entries, in [0, 1).
        assert np.allclose(t, t[:, :1, :1], atol=1e-4)
        seen.append(t[:, 0, 0])
    seen = np.concatenate(seen)
    assert seen.min() >= 0 and seen.max() < 1 and seen.std() > 0.2


def test_penalty_gradient_wrt_critic_parameters():
    """d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||, through the double backward pass."""
    real, fake = _data(1), _data(2)
    grad = jax.grad(lambda w: penalties.wgan_gp(linear_d(w), real, fake, RNG))(jnp.asarray(W))
    norm = np.sqrt(np.sum(W.astype(np.float64) ** 2))
    np.testing.assert_allclose(grad, 2 * (norm - 1) * W / norm, rtol=1e-4, atol=1e-6)
    grad_r1 = jax.grad(lambda w: penalties.r1(linear_d(w), real, fake, RNG))(jnp.asarray(W))
    np.testing.assert_allclose(grad_r1, W, rtol=1e-5)  # d/dw (1/2 ||w||^2) = w


def test_lazy_interval_scales_and_skips():
    real, fake = _data(1), _data(2)
    base = float(penalties.r1(linear_d(W), real, fake, RNG))
    term = jax.jit(lambda s: penalties.penalty_term(penalties.r1, 2.0, 4, s, linear_d(W), real,
                                                    fake, RNG))
    values = [float(term(jnp.int32(s))) for s in range(8)]
    np.testing.assert_allclose(values[0], 2.0 * 4 * base, rtol=1e-5)
    np.testing.assert_allclose(values[4], 2.0 * 4 * base, rtol=1e-5)
    assert values[1:4] == [0.0, 0.0, 0.0] and values[5:] == [0.0, 0.0, 0.0]
    every = penalties.penalty_term(penalties.r1, 2.0, 1, jnp.int32(3), linear_d(W), real, fake,
                                   RNG)
    np.testing.assert_allclose(float(every), 2.0 * base, rtol=1e-5)
    # Over k updates the lazy penalty's total equals the eager one's.
    np.testing.assert_allclose(sum(values[:4]), 4 * float(every), rtol=1e-5)


def test_zero_gradient_is_not_nan():
    zero_d = lambda x: jnp.zeros(x.shape[0])
    for name in ('wgan_gp', 'dragan'):
        grad = jax.grad(lambda x: penalties.get_penalty(name)(
            lambda v: jnp.sum(v * x, axis=(1, 2)) * 0.0, _data(1), _data(2), RNG))(
                jnp.asarray(W))
        assert np.all(np.isfinite(grad)), name
    assert float(penalties.wgan_gp(zero_d, _data(1), _data(2), RNG)) == pytest.approx(1.0, abs=1e-5)


def test_unknown_penalty_names_the_choices():
    with pytest.raises(ConfigError, match='wgan_gp'):
        penalties.get_penalty('gp')
