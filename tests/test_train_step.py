"""The pure step: every loss, penalty and architecture trains; values against a reference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import losses, penalties
from ganjax.errors import ConfigError
from ganjax.data import Scaling
from ganjax.train_step import (apply_module, build_gan, create_state, make_generate_fn,
                               make_train_step, to_model)
from util import random_batch, tiny_config, train_steps

VECTOR = (2,)


def _assert_finite(tree):
    for leaf in jax.tree.leaves(tree):
        assert np.all(np.isfinite(np.asarray(leaf, np.float32)))


def _changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize('loss', sorted(losses.LOSSES))
def test_every_loss_trains(loss):
    config = tiny_config('mlp', loss__name=loss)
    gan = build_gan(config, VECTOR)
    before = create_state(config, gan)
    _, after, metrics = train_steps(config, VECTOR)
    assert int(after.step) == 1
    assert _changed(before.g_params, after.g_params) and _changed(before.d_params, after.d_params)
    for key in ('d_loss', 'd_real', 'd_fake', 'penalty', 'g_loss', 'd_grad_norm', 'g_grad_norm',
                'd_acc_real', 'd_acc_fake'):
        assert key in metrics and np.isfinite(metrics[key]), key
    np.testing.assert_allclose(metrics['d_loss'], metrics['d_real'] + metrics['d_fake'],
                               rtol=1e-5, atol=1e-6)
    assert 0 <= metrics['d_acc_real'] <= 1


@pytest.mark.parametrize('penalty', sorted(penalties.PENALTIES))
def test_every_penalty_trains(penalty):
    config = tiny_config('mlp', penalty__name=penalty, model__d_norm='none', loss__name='wasserstein')
    _, state, metrics = train_steps(config, VECTOR)
    _assert_finite(state)
    if penalty == 'none':
        assert metrics['penalty'] == 0
    elif penalty == 'wgan_gp_one_sided':
        assert metrics['penalty'] >= 0  # zero while D's input gradients are below norm 1
    else:
        assert metrics['penalty'] > 0


@pytest.mark.parametrize('arch, data_shape, extra', [
    ('mlp', (2,), {}),
    ('mlp', (6, 6, 1), {}),
    ('dcgan', (28, 28, 1), {}),
    ('dcgan', (32, 4), {}),  # a 1D sequence: length 32, 4 channels
    ('dcgan', (16, 16, 3), {'model__d_spectral_norm': True, 'model__g_spectral_norm': True}),
    ('resnet', (32, 32, 3), {'model__d_spectral_norm': True, 'loss__name': 'hinge'}),
])
def test_every_architecture_trains(arch, data_shape, extra):
    config = tiny_config(arch, **extra)
    gan, state, metrics = train_steps(config, data_shape)
    _assert_finite((state, metrics))
    x = make_generate_fn(gan)(state.ema_params, state.g_state, jnp.zeros((3, gan.latent_dim)))
    assert x.shape == (3,) + data_shape


def test_no_recompilation_after_first_step():
    config = tiny_config('dcgan', train__n_critic=2)
    gan = build_gan(config, (28, 28, 1), scaling=Scaling.image(8))
    step = make_train_step(config, gan)
    traced = chex.assert_max_traces(step, n=1)
    jitted = jax.jit(traced, donate_argnums=0)
    state = create_state(config, gan)
    for i in range(3):
        state, _ = jitted(state, random_batch(config, (28, 28, 1), seed=i))
    assert jitted._cache_size() == 1


def test_n_critic_updates_d_n_times_and_g_once():
    config = tiny_config('mlp', train__n_critic=3)
    _, state, _ = train_steps(config, VECTOR, steps=2)
    def counts(opt_state):  # the update counters (the injected hyperparameters are floats)
        return [int(x) for x in jax.tree.leaves(opt_state)
                if np.ndim(x) == 0 and np.issubdtype(np.asarray(x).dtype, np.integer)]

    assert counts(state.d_opt_state) and all(c == 6 for c in counts(state.d_opt_state))
    assert counts(state.g_opt_state) and all(c == 2 for c in counts(state.g_opt_state))


def test_ema_update_formula():
    config = tiny_config('mlp', ema__decay=0.9, ema__warmup=False)
    gan = build_gan(config, VECTOR)
    step = jax.jit(make_train_step(config, gan))
    s0 = create_state(config, gan)
    s1, _ = step(s0, random_batch(config, VECTOR, 0))
    s2, _ = step(s1, random_batch(config, VECTOR, 1))
    want = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, s1.ema_params, s2.g_params)
    chex.assert_trees_all_close(s2.ema_params, want, rtol=1e-6)
    assert _changed(s2.ema_params, s2.g_params)


def test_weight_clipping():
    config = tiny_config('mlp', loss__name='wasserstein', loss__weight_clip=0.01,
                         optim__name='rmsprop', optim__d_lr=0.5)
    _, state, _ = train_steps(config, VECTOR)
    for leaf in jax.tree.leaves(state.d_params):
        assert np.max(np.abs(leaf)) <= 0.01 + 1e-7


def test_step_is_deterministic():
    config = tiny_config('dcgan')
    gan = build_gan(config, (28, 28, 1), scaling=Scaling.image(8))
    step = jax.jit(make_train_step(config, gan))
    batch = random_batch(config, (28, 28, 1))
    a = step(create_state(config, gan), batch)
    b = step(create_state(config, gan), batch)
    chex.assert_trees_all_equal(a, b)


def test_step_matches_an_independent_reference():
    """One SGD step of D and of G, recomputed by hand from the same noise (MLP, no norms)."""
    config = tiny_config('mlp', model__g_norm='none', model__d_norm='none', optim__name='sgd',
                         optim__b1=0.0, optim__g_lr=0.1, optim__d_lr=0.05, ema__decay=0.5,
                         ema__warmup=False)
    gan = build_gan(config, VECTOR)
    state = create_state(config, gan)
    batch = random_batch(config, VECTOR)
    new, metrics = jax.jit(make_train_step(config, gan))(state, batch)

    G, D = gan.generator, gan.discriminator
    key = jax.random.fold_in(state.rng, 0)
    k_d, k_g = jax.random.split(key)
    k_z, _ = jax.random.split(jax.random.fold_in(k_d, 0))
    b = config.data.batch_size
    z_d = jax.random.normal(k_z, (b, gan.latent_dim))
    z_g = jax.random.normal(k_g, (b, gan.latent_dim))
    x = jnp.asarray(batch['x'][0])
    fake = G.apply({'params': state.g_params}, z_d, train=True)

    def d_loss(p):  # non-saturating, written out
        r = D.apply({'params': p}, x, train=True)['logit']
        f = D.apply({'params': p}, fake, train=True)['logit']
        return jnp.mean(jnp.log1p(jnp.exp(-r))) + jnp.mean(jnp.log1p(jnp.exp(f)))

    d_grads = jax.grad(d_loss)(state.d_params)
    d_params = jax.tree.map(lambda p, g: p - 0.05 * g, state.d_params, d_grads)

    def g_loss(p):
        f = D.apply({'params': d_params}, G.apply({'params': p}, z_g, train=True),
                    train=True)['logit']
        return jnp.mean(jnp.log1p(jnp.exp(-f)))

    g_grads = jax.grad(g_loss)(state.g_params)
    g_params = jax.tree.map(lambda p, g: p - 0.1 * g, state.g_params, g_grads)
    chex.assert_trees_all_close(new.d_params, d_params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(new.g_params, g_params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(new.ema_params,
                                jax.tree.map(lambda a, c: 0.5 * a + 0.5 * c, state.g_params,
                                             g_params), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics['d_loss'], d_loss(state.d_params), rtol=1e-5)
    np.testing.assert_allclose(metrics['d_grad_norm'], optax.tree.norm(d_grads), rtol=1e-5)
    np.testing.assert_allclose(metrics['g_grad_norm'], optax.tree.norm(g_grads), rtol=1e-5)


def test_batch_stats_are_updated_and_carried():
    config = tiny_config('dcgan')
    gan = build_gan(config, (28, 28, 1), scaling=Scaling.image(8))
    s0 = create_state(config, gan)
    s1, _ = jax.jit(make_train_step(config, gan))(s0, random_batch(config, (28, 28, 1)))
    assert s0.g_state and s0.d_state
    assert _changed(s0.g_state, s1.g_state) and _changed(s0.d_state, s1.d_state)


def test_wrong_batch_shape_is_a_clear_error():
    config = tiny_config('mlp')
    gan = build_gan(config, VECTOR)
    bad = random_batch(config, (3,))
    with pytest.raises(ConfigError, match=r'expects \[n_critic=1, batch, \*\(2,\)\]'):
        make_train_step(config, gan)(create_state(config, gan), bad)


def test_the_step_scales_data_as_the_gan_declares():
    config = tiny_config('dcgan')
    x = jnp.array([0, 255, 128], jnp.uint8)
    gan = build_gan(config, (28, 28, 1), scaling=Scaling.image(8))
    np.testing.assert_allclose(to_model(gan, x), [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
    gan16 = build_gan(config, (28, 28, 1), scaling=Scaling.image(16))
    np.testing.assert_allclose(to_model(gan16, jnp.array([0, 65535], jnp.uint16)), [-1.0, 1.0],
                               atol=1e-6)
    # Without a declared scaling, integer data is refused rather than guessed.
    with pytest.raises(ConfigError, match='needs the data.s scaling'):
        to_model(build_gan(config, (28, 28, 1)), x)


def test_apply_module_eval_mode_leaves_stats():
    config = tiny_config('dcgan')
    gan = build_gan(config, (28, 28, 1), scaling=Scaling.image(8))
    state = create_state(config, gan)
    _, cols = apply_module(gan.generator, state.g_params, state.g_state,
                           jnp.ones((2, gan.latent_dim)), train=False)
    chex.assert_trees_all_equal(cols, state.g_state)


def test_bf16_trains_the_tiny_dcgan_close_to_float32():
    from ganjax import data as data_lib
    history = {}
    for precision in ('float32', 'bf16'):
        config = tiny_config('dcgan', precision=precision, data__name='mnist_5k',
                             data__batch_size=16)
        source = data_lib.build_source(config.data, 'train')
        gan = build_gan(config, source.data_shape, scaling=source.scaling)
        state = create_state(config, gan)
        step = jax.jit(make_train_step(config, gan))
        batches = data_lib.BatchIterator(source, 16, seed=0, prefetch=0)
        losses = []
        for _ in range(40):
            state, metrics = step(state, {'x': next(batches)['x'][None]})
            losses.append([float(metrics['d_loss']), float(metrics['g_loss'])])
        history[precision] = np.array(losses)
        # Parameters, optimizer states, EMA and BatchNorm statistics stay float32.
        for leaf in jax.tree.leaves((state.g_params, state.d_params, state.g_state, state.d_state,
                                     state.g_opt_state, state.d_opt_state, state.ema_params)):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                assert leaf.dtype == jnp.float32
    f32, bf16 = history['float32'], history['bf16']
    assert np.all(np.isfinite(bf16))
    # bfloat16 keeps 8 mantissa bits: the trajectories drift apart slowly, but the losses of the
    # last ten steps agree on average.
    assert np.abs(bf16[:5] - f32[:5]).max() < 0.01
    assert np.abs(bf16[-10:].mean(0) - f32[-10:].mean(0)).max() < 0.05


def test_labels_reach_a_conditional_gan():
    """A tiny conditional MLP: D's logits and the step's result depend on the labels, G's samples
    on the requested class; an unconditional GAN ignores labels."""
    config = tiny_config('mlp', model__conditional=True)
    gan = build_gan(config, VECTOR, num_classes=3)
    state = create_state(config, gan)
    assert 'class_embed' in state.d_params
    step = jax.jit(make_train_step(config, gan))
    batch = random_batch(config, VECTOR)
    other = dict(batch, label=(batch['label'] + 1) % 3)
    a, _ = step(state, batch)
    b, _ = step(state, other)
    assert _changed(a.d_params, b.d_params)
    x = jax.random.normal(jax.random.PRNGKey(3), (4,) + VECTOR)
    logits = [apply_module(gan.discriminator, state.d_params, state.d_state, x, train=False,
                           y=jnp.full((4,), k))[0]['logit'] for k in range(3)]
    assert not np.allclose(logits[0], logits[1])
    z = jnp.ones((2, gan.latent_dim))
    generate = make_generate_fn(gan)
    # Conditional BatchNorm starts as the plain one (class gains 1 + 0, biases 0), so G reads
    # the class only once a step has moved the class embeddings.
    x0, x2 = (generate(state.g_params, state.g_state, z, jnp.array([k, k])) for k in (0, 2))
    np.testing.assert_array_equal(x0, x2)
    x0, x2 = (generate(a.g_params, a.g_state, z, jnp.array([k, k])) for k in (0, 2))
    assert not np.allclose(x0, x2)
    with pytest.raises(ConfigError, match=r"needs batch\['label'\]"):
        make_train_step(config, gan)(state, {'x': batch['x']})
    with pytest.raises(ConfigError, match='needs labelled data'):
        build_gan(config, VECTOR, num_classes=0)
    # Unconditional: labels are carried but not read.
    plain = tiny_config('mlp')
    gan = build_gan(plain, VECTOR, num_classes=3)
    step = jax.jit(make_train_step(plain, gan))
    state = create_state(plain, gan)
    for x, y in zip(jax.tree.leaves(step(state, batch)[0]), jax.tree.leaves(step(state, other)[0])):
        np.testing.assert_array_equal(x, y)
