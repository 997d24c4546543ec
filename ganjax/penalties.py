"""Gradient penalties on the discriminator, as pure functions.

Every penalty has the same signature::

    penalty_fn(d_fn, real, fake, rng) -> scalar

`d_fn` maps a batch x [B, ...] to logits [B] with the discriminator's parameters closed over, so the
penalty can be differentiated with respect to them (a gradient of a gradient). `real` and `fake`
are batches of the same shape; `rng` is a PRNG key for the random interpolation points. The value
is unweighted; `penalty_term` applies `penalty.weight` and the lazy interval. A penalty is chosen by
name from `PENALTIES`; a user's own penalty enters the table with `register_penalty`.

The input gradient of sum_i D(x_i) equals the per-example input gradient only when D treats the
examples independently: a discriminator with batch normalization mixes them, which is why WGAN-GP
and DRAGAN are used with `model.d_norm='layer'` or `'none'`.
"""

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from ganjax.errors import ConfigError, check_registration, lookup

DFn = Callable[[jax.Array], jax.Array]
PenaltyFn = Callable[[DFn, jax.Array, jax.Array, jax.Array], jax.Array]

# Keeps sqrt differentiable where a gradient is exactly zero (d sqrt(u)/du is infinite at 0).
_NORM_EPS = 1e-12


def input_gradients(d_fn: DFn, x: jax.Array) -> jax.Array:
    """Gradient of the summed logits with respect to the input, computed in float32.

    Args:
      d_fn: x [B, ...] -> logits [B].
      x: the points, [B, ...].

    Returns:
      dD/dx at each point, float32 [B, ...].
    """
    x = jnp.asarray(x, jnp.float32)
    return jax.grad(lambda v: jnp.sum(d_fn(v).astype(jnp.float32)))(x)


def _sq_norms(g: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=-1)


def _interpolate(real, fake, rng):
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = jax.random.uniform(rng, eps_shape, jnp.float32)
    return eps * real.astype(jnp.float32) + (1.0 - eps) * fake.astype(jnp.float32)


def _grad_norms(d_fn: DFn, x: jax.Array) -> jax.Array:
    return jnp.sqrt(_sq_norms(input_gradients(d_fn, x)) + _NORM_EPS)


def _interpolate_grad_norms(d_fn, real, fake, rng):
    return _grad_norms(d_fn, _interpolate(real, lax.stop_gradient(fake), rng))


def no_penalty(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """No penalty: always 0.

    Args:
      d_fn: unused.
      real: unused.
      fake: unused.
      rng: unused.

    Returns:
      A float32 zero.
    """
    del d_fn, real, fake, rng
    return jnp.zeros((), jnp.float32)


def wgan_gp(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """Two-sided gradient penalty: E[(||grad D(x^)|| - 1)^2] at random interpolates x^.

    Args:
      d_fn: x [B, ...] -> logits [B].
      real: real batch [B, ...].
      fake: generated batch [B, ...] (treated as a constant).
      rng: PRNG key for the interpolation weights, one per example.

    Returns:
      The unweighted penalty, a float32 scalar.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
      https://arxiv.org/abs/1704.00028
    """
    return jnp.mean(jnp.square(_interpolate_grad_norms(d_fn, real, fake, rng) - 1.0))


def wgan_gp_one_sided(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """One-sided gradient penalty: E[max(0, ||grad D(x^)|| - 1)^2] at random interpolates x^.

    Only gradient norms above 1 are penalised, which is what the Lipschitz constraint asks.

    Args:
      d_fn: x [B, ...] -> logits [B].
      real: real batch [B, ...].
      fake: generated batch [B, ...] (treated as a constant).
      rng: PRNG key for the interpolation weights.

    Returns:
      The unweighted penalty, a float32 scalar.

    References:
      Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, appendix;
      Petzka, Fischer, Lukovnicov, "On the regularization of Wasserstein GANs", ICLR 2018.
      https://arxiv.org/abs/1709.08894
    """
    norms = _interpolate_grad_norms(d_fn, real, fake, rng)
    return jnp.mean(jnp.square(jax.nn.relu(norms - 1.0)))


def r1(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """R1 penalty on real data: 1/2 E[||grad D(x)||^2], x real.

    The factor 1/2 follows the paper, so `penalty.weight` is its gamma.

    Args:
      d_fn: x [B, ...] -> logits [B].
      real: real batch [B, ...].
      fake: unused.
      rng: unused.

    Returns:
      The unweighted penalty, a float32 scalar.

    References:
      Mescheder, Geiger, Nowozin, "Which Training Methods for GANs do actually Converge?",
      ICML 2018. https://arxiv.org/abs/1801.04406
    """
    del fake, rng
    return 0.5 * jnp.mean(_sq_norms(input_gradients(d_fn, real)))


def r2(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """R2 penalty on generated data: 1/2 E[||grad D(G(z))||^2].

    Args:
      d_fn: x [B, ...] -> logits [B].
      real: unused.
      fake: generated batch [B, ...] (treated as a constant).
      rng: unused.

    Returns:
      The unweighted penalty, a float32 scalar.

    References:
      Mescheder, Geiger, Nowozin, "Which Training Methods for GANs do actually Converge?",
      ICML 2018. https://arxiv.org/abs/1801.04406
    """
    del real, rng
    return 0.5 * jnp.mean(_sq_norms(input_gradients(d_fn, lax.stop_gradient(fake))))


def dragan(d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """DRAGAN: E[(||grad D(x~)|| - 1)^2] at points x~ near the real data.

    x~ = x + a * (x_p - x) with x_p = x + 0.5 * std(x) * u, u ~ U[0, 1) elementwise and
    a ~ U[0, 1) per example: the penalty acts in a neighbourhood of the data manifold.

    Args:
      d_fn: x [B, ...] -> logits [B].
      real: real batch [B, ...].
      fake: unused.
      rng: PRNG key for the perturbation and interpolation.

    Returns:
      The unweighted penalty, a float32 scalar.

    References:
      Kodali et al., "On Convergence and Stability of GANs", 2017. https://arxiv.org/abs/1705.07215
    """
    del fake
    x = real.astype(jnp.float32)
    k_noise, k_alpha = jax.random.split(rng)
    perturbed = x + 0.5 * jnp.std(x) * jax.random.uniform(k_noise, x.shape, jnp.float32)
    alpha = jax.random.uniform(k_alpha, (x.shape[0],) + (1,) * (x.ndim - 1), jnp.float32)
    return jnp.mean(jnp.square(_grad_norms(d_fn, x + alpha * (perturbed - x)) - 1.0))


PENALTIES: dict[str, PenaltyFn] = {
    'none': no_penalty,
    'wgan_gp': wgan_gp,
    'wgan_gp_one_sided': wgan_gp_one_sided,
    'r1': r1,
    'r2': r2,
    'dragan': dragan,
}


def _check_penalty_output(name: str, fn: PenaltyFn) -> None:
    # Traced on abstract values (jax.eval_shape), with a small nonlinear critic of weights w:
    # the step differentiates the penalty with respect to D's parameters, so that must trace too.
    x = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    w = jax.ShapeDtypeStruct((3,), jnp.float32)
    key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
    where = f'register_penalty({name!r}): {getattr(fn, "__qualname__", fn)}'

    def probe(w, real, fake, rng):
        return fn(lambda v: jnp.tanh(v.reshape(v.shape[0], -1) @ w), real, fake, rng)

    try:
        out = jax.eval_shape(probe, w, x, x, key)
    except Exception as e:  # user code: say which penalty failed and how
        raise ConfigError(f'{where} fails on a critic of [4, 3] float32 batches: '
                          f'{type(e).__name__}: {e}') from e
    if getattr(out, 'shape', None) != () or getattr(out, 'dtype', None) != jnp.float32:
        shown = jax.tree.map(lambda a: f'{a.dtype}{list(a.shape)}', out)
        raise ConfigError(f'{where} must return a float32 scalar (the unweighted penalty); it '
                          f'returned {shown}')
    try:
        jax.eval_shape(jax.grad(probe), w, x, x, key)
    except Exception as e:
        raise ConfigError(f"{where}: it cannot be differentiated with respect to the critic's "
                          f'parameters: {type(e).__name__}: {e}') from e


def register_penalty(name: str, *, replace: bool = False) -> Callable[[PenaltyFn], PenaltyFn]:
    """Decorator that adds a penalty to `PENALTIES`, so that configs (`penalty.name`) can name it.

    The function is checked once, here: it must take (d_fn, real, fake, rng) and return the
    unweighted penalty as a float32 scalar that can be differentiated with respect to the
    parameters `d_fn` closes over (see the module's docstring). Put the module that registers it
    in `config.imports`, so that a run that uses it can be resumed from its workdir alone.

    Example::

        @ganjax.register_penalty('my_penalty')
        def my_penalty(d_fn, real, fake, rng):
            ...

    Args:
      name: the penalty's name in `PENALTIES`.
      replace: allow replacing an existing entry (built-in or registered).

    Returns:
      A decorator that registers its function and returns it unchanged.

    Raises:
      ConfigError: (from the decorator) for a taken name without `replace`, something not
        callable, a wrong signature, or an output that breaks the contract.
    """
    if callable(name):  # @register_penalty without a name
        raise ConfigError('register_penalty takes the name first, as '
                          "@register_penalty('my_penalty')")

    def decorator(fn: PenaltyFn) -> PenaltyFn:
        check_registration(PENALTIES, name, fn, 'register_penalty',
                           ('d_fn', 'real', 'fake', 'rng'), replace)
        _check_penalty_output(name, fn)
        PENALTIES[name] = fn
        return fn

    return decorator


def get_penalty(name: str) -> PenaltyFn:
    """Looks a penalty up by name.

    Args:
      name: a key of `PENALTIES`.

    Returns:
      The penalty function.

    Raises:
      ConfigError: if `name` is not in the table.
    """
    return lookup(PENALTIES, name, 'penalty.name')


def penalty_term(penalty_fn: PenaltyFn, weight: float, interval: int, d_step: jax.Array,
                 d_fn: DFn, real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """The weighted penalty, applied lazily every `interval` discriminator updates.

    Lazy regularization computes the penalty only on every k-th D update and multiplies it by k,
    so its expected contribution is unchanged while its cost drops k-fold (Karras et al.,
    "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 4.1).

    Args:
      penalty_fn: one of `PENALTIES`.
      weight: the penalty weight (lambda or gamma), a float or a traced scalar.
      interval: apply on D updates whose index is a multiple of this (1 = every update).
      d_step: index of the current D update, an int32 scalar (may be traced).
      d_fn: x [B, ...] -> logits [B].
      real: real batch.
      fake: generated batch.
      rng: PRNG key.

    Returns:
      (weight * interval * penalty) on the chosen updates, 0 otherwise; a float32 scalar.
    """
    # `weight` may be traced (a population's members have their own), so it chooses nothing
    # here: only the table entry 'none' skips the computation.
    if penalty_fn is no_penalty:
        return jnp.zeros((), jnp.float32)
    if interval <= 1:
        return weight * penalty_fn(d_fn, real, fake, rng)
    # lax.cond skips the penalty's double backward pass on the updates it does not apply to.
    return lax.cond(
        d_step % interval == 0,
        lambda: (weight * interval) * penalty_fn(d_fn, real, fake, rng),
        lambda: jnp.zeros((), jnp.float32))
