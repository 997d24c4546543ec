"""DiffAugment ops, ADA's probability and the small-data training subset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import augment, compose, data, parallel
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state, make_train_step
from util import random_batch, tiny_config

POLICY = 'color,translation,cutout'


def _images(shape=(3, 8, 8, 3), seed=0):
    return jax.random.uniform(jax.random.PRNGKey(seed), shape, jnp.float32, -1.0, 1.0)


@pytest.mark.parametrize('name', sorted(augment.OPS))
@pytest.mark.parametrize('shape', [(3, 8, 8, 1), (3, 8, 6, 3), (2, 8, 8, 5)])
def test_op_keeps_shape_and_dtype(name, shape):
    x = _images(shape)
    out = jax.jit(augment.OPS[name])(x, jax.random.PRNGKey(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.all(np.isfinite(out))


def test_saturation_is_identity_on_one_channel():
    x = _images((3, 8, 8, 1))
    np.testing.assert_array_equal(augment.saturation(x, jax.random.PRNGKey(0)), x)


def test_rank2_images_keep_their_shape():
    x = _images((3, 8, 8))
    out = augment.augment(x, jax.random.PRNGKey(0), augment.parse_policy(POLICY))
    assert out.shape == x.shape and not np.array_equal(out, x)


def test_identity_for_empty_policy_and_p_zero():
    x = _images()
    key = jax.random.PRNGKey(3)
    assert augment.augment(x, key, ()) is x
    out = jax.jit(augment.augment, static_argnums=2)(x, key, augment.parse_policy(POLICY), 0.0)
    np.testing.assert_array_equal(out, x)


def test_deterministic_per_key_and_different_across_keys():
    x = _images()
    ops = augment.parse_policy(POLICY)
    a = augment.augment(x, jax.random.PRNGKey(0), ops)
    np.testing.assert_array_equal(a, augment.augment(x, jax.random.PRNGKey(0), ops))
    assert not np.allclose(a, augment.augment(x, jax.random.PRNGKey(1), ops))


def test_each_example_draws_its_own_parameters():
    x = jnp.broadcast_to(_images((1, 8, 8, 3)), (4, 8, 8, 3))
    out = augment.augment(x, jax.random.PRNGKey(0), augment.parse_policy(POLICY))
    assert len({np.asarray(o).tobytes() for o in out}) == 4


def test_translate_moves_by_the_shift_with_zero_fill():
    x = jnp.arange(1, 17, dtype=jnp.float32).reshape(1, 4, 4, 1)
    x = jnp.concatenate([x, x], axis=0)
    out = np.asarray(augment.translate(x, jnp.array([[1, -2], [0, 0]], jnp.int32)))[..., 0]
    grid = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    expected = np.zeros((4, 4), np.float32)
    expected[1:, :2] = grid[:3, 2:]  # one row down, two columns left
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[1], grid)


def test_translation_shift_is_at_most_an_eighth():
    assert augment.max_shift(28) == 4 and augment.max_shift(32) == 4 and augment.max_shift(8) == 1
    # A one-hot image moves its pixel by the drawn shift, never more than max_shift(16) = 2.
    x = jnp.zeros((64, 16, 16, 1)).at[:, 8, 8, 0].set(1.0)
    out = np.asarray(augment.translation(x, jax.random.PRNGKey(0)))[..., 0]
    rows, cols = np.nonzero(out.sum(axis=2))[1], np.nonzero(out.sum(axis=1))[1]
    assert out.sum() == 64  # the pixel stays inside the image
    assert set(rows - 8) <= set(range(-2, 3)) and set(cols - 8) <= set(range(-2, 3))
    assert len(set(rows - 8)) > 1 and len(set(cols - 8)) > 1


def test_cut_zeroes_the_stated_square():
    x = jnp.ones((2, 6, 6, 2))
    out = np.asarray(augment.cut(x, jnp.array([[3, 2], [0, 5]], jnp.int32), (3, 3)))
    hole = out[..., 0] == 0
    expected = np.zeros((2, 6, 6), bool)
    expected[0, 2:5, 1:4] = True  # centre (3, 2): rows 2..4, columns 1..3
    expected[1, 0:2, 4:6] = True  # centre (0, 5): rows -1..1, columns 4..6, clipped
    np.testing.assert_array_equal(hole, expected)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])


def test_cutout_square_is_half_the_size():
    assert augment.cutout_size(28) == 14 and augment.cutout_size(8) == 4
    out = np.asarray(augment.cutout(jnp.ones((32, 8, 8, 1)), jax.random.PRNGKey(0)))[..., 0]
    zeros = (out == 0).sum(axis=(1, 2))
    assert zeros.max() == 16 and zeros.min() >= 4  # 4x4, at least a 2x2 corner inside
    for img in out:  # every hole is one axis-aligned rectangle
        r, c = np.nonzero(img == 0)
        assert len(r) == (r.max() - r.min() + 1) * (c.max() - c.min() + 1)


@pytest.mark.parametrize('name', sorted(augment.OPS))
def test_gradients_flow(name):
    x = _images((2, 8, 8, 3))
    key = jax.random.PRNGKey(2)
    weights = _images((2, 8, 8, 3), seed=5)
    loss = lambda v: jnp.sum(augment.OPS[name](v, key) * weights)
    grad = jax.grad(loss)(x)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


@pytest.mark.parametrize('name', ['brightness', 'saturation', 'contrast'])
def test_gradient_matches_finite_differences(name):
    x = _images((2, 4, 4, 3))
    key = jax.random.PRNGKey(4)
    loss = lambda v: jnp.sum(jnp.sin(augment.OPS[name](v, key)))
    grad = np.asarray(jax.grad(loss)(x))
    direction = np.asarray(_images((2, 4, 4, 3), seed=9))
    eps = 1e-2
    numeric = (loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(np.sum(grad * direction), numeric, rtol=1e-2)


def test_translation_gradient_is_the_shift_back():
    x = _images((1, 4, 4, 1))
    weights = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
    shift = jnp.array([[1, 0]], jnp.int32)
    grad = jax.grad(lambda v: jnp.sum(augment.translate(v, shift) * weights))(x)
    expected = np.zeros((4, 4), np.float32)
    expected[:3] = np.asarray(weights)[0, 1:, :, 0]  # row i feeds output row i + 1
    np.testing.assert_array_equal(np.asarray(grad)[0, ..., 0], expected)


def test_bad_policy_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="'colour'"):
        augment.parse_policy('colour,translation')
    with pytest.raises(ConfigError, match='augment.policy'):
        tiny_config('dcgan', augment__policy='translation,cutuot')
    with pytest.raises(ConfigError, match='twice'):
        augment.parse_policy('cutout, cutout')


def test_vector_data_with_a_policy_is_a_config_error():
    config = tiny_config('mlp', augment__policy='translation')
    with pytest.raises(ConfigError, match='needs images'):
        build_gan(config, (2,))
    build_gan(tiny_config('mlp'), (2,))  # no policy: fine


def test_hparams_only_when_augmenting():
    shape = (8, 8, 1)
    plain = create_state(tiny_config('dcgan'), build_gan(tiny_config('dcgan'), shape))
    assert 'augment_p' not in plain.hparams  # old checkpoints keep their structure
    config = tiny_config('dcgan', augment__policy='translation', augment__p=0.3)
    state = create_state(config, build_gan(config, shape))
    assert float(state.hparams['augment_p']) == pytest.approx(0.3)
    assert 'ada_rt_sum' not in state.hparams


def _one_step(config, shape=(8, 8, 1)):
    gan = build_gan(config, shape, scaling=data.Scaling.image(8))
    state = create_state(config, gan)
    new, metrics = jax.jit(make_train_step(config, gan))(state, random_batch(config, shape))
    return jax.device_get(new), jax.device_get(metrics)


def test_augmented_step_trains_and_differs():
    plain_state, plain = _one_step(tiny_config('dcgan'))
    config = tiny_config('dcgan', augment__policy=POLICY)
    state, metrics = _one_step(config)
    assert np.isfinite(metrics['d_loss']) and np.isfinite(metrics['g_loss'])
    assert metrics['augment_p'] == 1.0 and -1 <= metrics['ada_rt'] <= 1
    assert 'augment_p' not in plain and 'ada_rt' not in plain
    assert metrics['d_loss'] != plain['d_loss']
    leaves = zip(jax.tree.leaves(state.d_params), jax.tree.leaves(plain_state.d_params))
    assert any(not np.array_equal(a, b) for a, b in leaves)
    # At p = 0 the augmented step is the plain step: same draws, identical inputs to D.
    _, off = _one_step(tiny_config('dcgan', augment__policy=POLICY, augment__p=0.0))
    np.testing.assert_allclose(off['d_loss'], plain['d_loss'], rtol=1e-6)
    np.testing.assert_allclose(off['g_loss'], plain['g_loss'], rtol=1e-6)


def test_penalty_sees_augmented_inputs():
    config = tiny_config('dcgan', augment__policy='translation', penalty__name='wgan_gp',
                         model__d_norm='none', loss__name='wasserstein')
    _, metrics = _one_step(config)
    assert np.isfinite(metrics['penalty']) and metrics['penalty'] > 0


@pytest.mark.parametrize('sign, direction', [(1.0, 1), (-1.0, -1)])
def test_ada_p_follows_the_sign_of_real_logits(sign, direction):
    spec = augment.AugmentSpec(ops=('translation',), ada_target=0.6, ada_interval=2,
                               ada_kimg=1.0)
    hp = {'augment_p': jnp.float32(0.5), 'ada_rt_sum': jnp.float32(0.0)}
    rt = jnp.float32(sign)  # mean sign of logits that are all positive (or all negative)
    hp1 = augment.ada_update(spec, hp, rt, jnp.int32(0), images_per_step=50)
    assert float(hp1['augment_p']) == 0.5 and float(hp1['ada_rt_sum']) == sign  # not yet due
    hp2 = augment.ada_update(spec, hp1, rt, jnp.int32(1), images_per_step=50)
    # Due after 2 steps: 100 images of the 1,000 that move p by 1.
    assert float(hp2['augment_p']) == pytest.approx(0.5 + direction * 0.1)
    assert float(hp2['ada_rt_sum']) == 0.0
    assert float(augment.ada_adjust(jnp.float32(0.99), rt, 0.6, 1e6, 1.0)) == (
        1.0 if direction > 0 else 0.0)


def test_ada_in_the_step_moves_p():
    config = tiny_config('dcgan', augment__policy='translation', augment__p=0.5,
                         augment__ada_target=0.6, augment__ada_interval=1,
                         augment__ada_kimg=0.1)
    state, metrics = _one_step(config)
    images = config.data.batch_size * config.train.n_critic
    expected = 0.5 + np.sign(metrics['ada_rt'] - 0.6) * images / 100.0
    assert float(state.hparams['augment_p']) == pytest.approx(expected)
    assert metrics['augment_p'] == pytest.approx(expected)


def test_train_examples_keeps_a_seeded_subset():
    cfg = tiny_config('dcgan').data
    full = data.build_source(cfg, 'train')
    cfg.train_examples = 450
    small = data.build_source(cfg, 'train')
    assert len(small) == 450 and small.data_shape == full.data_shape
    again = data.build_source(cfg, 'train')
    np.testing.assert_array_equal(small.indices, again.indices)
    batch = small.get_batch(np.arange(3))
    np.testing.assert_array_equal(batch['x'], full.get_batch(small.indices[:3])['x'])
    assert len(data.build_source(cfg, 'eval')) == len(data.build_source(tiny_config().data,
                                                                        'eval'))
    cfg.split_seed = 1
    assert not np.array_equal(data.build_source(cfg, 'train').indices, small.indices)
    cfg.train_examples = len(full) + 1
    with pytest.raises(ConfigError, match='data.train_examples'):
        data.build_source(cfg, 'train')


ADA = dict(augment__policy=POLICY, augment__p=0.5, augment__ada_target=0.6,
           augment__ada_interval=1, augment__ada_kimg=0.1, data__batch_size=16)


def _compiled_run(config, shape=(8, 8, 1)):
    gan = build_gan(config, shape, scaling=data.Scaling.image(8))
    par = parallel.Parallel(config)
    state = par.init_state(lambda: create_state(config, gan))
    batch = random_batch(config, shape)
    state, metrics = compose.compile_step(config, gan, par)(
        state, par.put_batch({'x': batch['x']}, batch_axis=1))
    return jax.device_get(par.canonical_state(state)), par.host_metrics(metrics)


@pytest.mark.slow  # two compilations over 8 simulated devices
def test_ada_step_over_8_devices():
    ref_state, ref = _one_step(tiny_config('dcgan', **ADA))
    # Sharded jit draws the same augmentation as one device: the same step.
    state, metrics = _compiled_run(tiny_config('dcgan', parallel__num_devices=0, **ADA))
    np.testing.assert_allclose(metrics['d_loss'], ref['d_loss'], rtol=1e-5)
    assert float(state.hparams['augment_p']) == float(ref_state.hparams['augment_p'])
    # pmap: each device augments its slice with its own draws; p moves from the global r_t.
    state, metrics = _compiled_run(tiny_config('dcgan', parallel__strategy='pmap',
                                               parallel__num_devices=0, **ADA))
    assert np.isfinite(metrics['d_loss']) and -1 <= metrics['ada_rt'] <= 1
    expected = 0.5 + np.sign(metrics['ada_rt'] - 0.6) * 16 / 100.0
    assert float(state.hparams['augment_p']) == pytest.approx(expected)


@pytest.mark.slow
def test_population_members_keep_their_own_p():
    shape = (8, 8, 1)
    configs = [tiny_config('dcgan', **{**ADA, 'augment__p': p}) for p in (0.2, 0.7)]
    gan = build_gan(configs[0], shape, scaling=data.Scaling.image(8))
    par = parallel.Parallel(configs[0], population=True)
    states = compose.init_population(gan, par, configs)
    # Each member its own batch: [members, n_critic, batch, ...].
    x = np.stack([random_batch(configs[0], shape, seed=i)['x'] for i in range(2)])
    states, metrics = compose.compile_step(configs[0], gan, par, population=True)(
        states, par.put_batch({'x': x}, batch_axis=2, member_axis=0))
    p = np.asarray(jax.device_get(states.hparams['augment_p']))
    rt = np.asarray(par.host_metrics(metrics)['ada_rt'])
    np.testing.assert_allclose(p, np.array([0.2, 0.7]) + np.sign(rt - 0.6) * 16 / 100.0,
                               rtol=1e-6)


@pytest.mark.slow  # three short training runs
def test_an_ada_run_resumes_with_its_p(tmp_path):
    from ganjax import train as train_lib  # noqa: PLC0415 (the loop; only this test needs it)

    def config(steps):
        return tiny_config('dcgan', train__num_steps=steps, train__checkpoint_every=2,
                           train__log_every=2, train__sample_every=100, data__train_examples=64,
                           augment__policy='translation', augment__p=0.5,
                           augment__ada_target=0.6, augment__ada_interval=1,
                           augment__ada_kimg=0.01)

    whole = train_lib.train_and_evaluate(config(4), str(tmp_path / 'whole'))
    train_lib.train_and_evaluate(config(2), str(tmp_path / 'split'))
    resumed = train_lib.train_and_evaluate(config(4), str(tmp_path / 'split'))
    assert int(resumed.step) == 4
    p = float(jax.device_get(whole.hparams['augment_p']))
    assert p != 0.5  # moved by 4 x 0.4 per step, clipped to [0, 1]
    assert float(jax.device_get(resumed.hparams['augment_p'])) == p
