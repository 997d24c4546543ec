"""Conditional generation and class heads: conditional normalization, the projection / ACGAN /
K+1 heads, their objectives, partial labels and the labelled stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import losses, models
from ganjax.data import ArraySource, BatchIterator, Scaling
from ganjax.data.labels import PartialLabels, choose_labelled, with_partial_labels
from ganjax.errors import ConfigError, DataError
from ganjax.models import layers
from ganjax.train_step import (apply_module, build_gan, create_state, make_classify_fn,
                               make_train_step)
from tests.util import random_batch, tiny_config

VECTOR = (6,)
K = 3


def _init_apply(fn, *args):
    import flax.linen as nn

    class Wrap(nn.Module):
        @nn.compact
        def __call__(self, *a):
            return fn(*a)

    module = Wrap()
    variables = module.init(jax.random.PRNGKey(0), *args)
    return module, variables


@pytest.mark.parametrize('kind', ['batch', 'layer'])
def test_conditional_norm_is_one_plus_gain_times_the_plain_norm_plus_bias(kind):
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    y = jnp.array([0, 1, 2, 1, 0])
    fn = lambda v, labels: layers.normalize(kind, v, train=True, name='n', y=labels,
                                            num_classes=K)
    module, variables = _init_apply(fn, x, y)
    params = variables['params']
    # Zero-initialised embeddings: the layer starts as the plain norm (gain 1, bias 0).
    assert set(params) == {'n_class_gain', 'n_class_bias'}
    for leaf in jax.tree.leaves(params):
        np.testing.assert_array_equal(leaf, 0.0)
    gain = jax.random.normal(jax.random.PRNGKey(2), (K, 4))
    bias = jax.random.normal(jax.random.PRNGKey(3), (K, 4))
    params = {'n_class_gain': {'embedding': gain}, 'n_class_bias': {'embedding': bias}}
    out, _ = module.apply({**variables, 'params': params}, x, y, mutable=True)
    if kind == 'batch':
        axes = 0
    else:
        axes = 1
    mu = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + layers.BATCH_NORM_EPSILON if kind == 'batch' else var + 1e-6)
    expected = x_hat * (1.0 + gain[y]) + bias[y]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('arch,shape', [('mlp', VECTOR), ('dcgan', (8, 8, 1)),
                                        ('resnet', (8, 8, 1))])
@pytest.mark.parametrize('conditioning', ['norm', 'concat', 'both'])
def test_conditional_generators_read_the_class(arch, shape, conditioning):
    cfg = dict(models.TINY_MODEL_OVERRIDES[arch], arch=arch, g_conditioning=conditioning)
    g, d = models.build_models(cfg, shape, K)
    z = jax.random.normal(jax.random.PRNGKey(0), (4, cfg['latent_dim']))
    y = jnp.array([0, 1, 2, 0])
    gv = g.init(jax.random.PRNGKey(1), z, y, train=False)
    names = str(jax.tree_util.tree_structure(gv['params']))
    assert ('class_gain' in names) == (conditioning != 'concat')
    kernel = jax.tree.leaves(gv['params']['dense0' if arch == 'mlp' else 'project'])[-1]
    assert kernel.shape[0] == cfg['latent_dim'] + (K if conditioning != 'norm' else 0)
    if conditioning != 'concat':
        # Give the class embeddings values: G's output then depends on the class.
        gv = dict(gv, params=jax.tree_util.tree_map_with_path(
            lambda p, v: v + 0.5 * jax.random.normal(jax.random.PRNGKey(len(str(p))), v.shape)
            if 'class_' in str(p) else v, gv['params']))
    x0 = g.apply(gv, z, jnp.zeros(4, jnp.int32), train=False)
    x1 = g.apply(gv, z, jnp.ones(4, jnp.int32), train=False)
    assert x0.shape == (4,) + shape and not np.allclose(x0, x1)
    dv = d.init(jax.random.PRNGKey(2), x0, y, train=False)
    assert 'class_embed' in dv['params']  # the default head of a conditional pair: projection
    with pytest.raises(ConfigError, match='needs labels'):
        g.apply(gv, z, None, train=False)


def test_norm_conditioning_needs_a_norm():
    cfg = dict(models.TINY_MODEL_OVERRIDES['mlp'], arch='mlp', g_norm='none')
    g, _ = models.build_models(cfg, VECTOR, K)
    with pytest.raises(ConfigError, match="g_conditioning='norm' needs normalization"):
        g.init(jax.random.PRNGKey(0), jnp.zeros((2, cfg['latent_dim'])), jnp.zeros(2, int),
               train=False)


@pytest.mark.parametrize('arch,shape', [('mlp', VECTOR), ('dcgan', (8, 8, 1)),
                                        ('resnet', (8, 8, 1))])
@pytest.mark.parametrize('head', ['acgan', 'kplus1'])
def test_class_heads(arch, shape, head):
    cfg = dict(models.TINY_MODEL_OVERRIDES[arch], arch=arch, d_head=head)
    g, d = models.build_models(cfg, shape, K)
    assert g.num_classes == (K if head == 'acgan' else 0)
    x = jax.random.normal(jax.random.PRNGKey(0), (4,) + shape)
    variables = d.init(jax.random.PRNGKey(1), x, train=False)
    out = d.apply(variables, x, train=False)
    assert out['class_logits'].shape == (4, K) and out['logit'].shape == (4,)
    assert out['features'].shape[0] == 4
    if head == 'kplus1':
        # D(x) = Z / (Z + 1) with Z = sum exp(l_k): the real/fake logit is logsumexp.
        np.testing.assert_allclose(out['logit'],
                                   jax.scipy.special.logsumexp(out['class_logits'], axis=-1),
                                   rtol=1e-6)
        assert 'logit' not in variables['params']
    else:
        assert {'logit', 'classifier'} <= set(variables['params'])


def test_head_and_class_count_must_fit():
    cfg = dict(models.TINY_MODEL_OVERRIDES['mlp'], arch='mlp')
    with pytest.raises(ConfigError, match="needs labelled data"):
        models.build_models(dict(cfg, d_head='kplus1'), VECTOR, 0)
    with pytest.raises(ConfigError, match="not 'logit'"):
        models.build_models(dict(cfg, d_head='logit'), VECTOR, K)
    with pytest.raises(ConfigError, match='model.d_head'):
        models.build_models(dict(cfg, d_head='auxiliary'), VECTOR, K)
    with pytest.raises(ConfigError, match='set model.conditional=False'):
        build_gan(tiny_config('mlp', model__conditional=True, model__d_head='kplus1'), VECTOR, K)
    with pytest.raises(ConfigError, match='set model.conditional=True'):
        build_gan(tiny_config('mlp', model__d_head='acgan'), VECTOR, K)
    with pytest.raises(ConfigError, match="set model.d_head='kplus1'"):
        build_gan(tiny_config('mlp', data__num_labels=30), VECTOR, K)


def test_class_cross_entropy_and_feature_matching_by_hand():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    labels = jnp.array([0, -1, 2])
    expected = np.mean([np.log(np.exp(2) + 2) - 2, np.log(3.0)])
    np.testing.assert_allclose(losses.class_cross_entropy(logits, labels), expected, rtol=1e-6)
    assert float(losses.class_cross_entropy(logits, jnp.full(3, -1))) == 0.0
    real = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    fake = jnp.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    # means (2, 3) and (0, 2): 2^2 + 1^2
    np.testing.assert_allclose(losses.feature_matching(real, fake), 5.0)
    grad_real = jax.grad(lambda r: losses.feature_matching(r, fake))(real)
    np.testing.assert_array_equal(grad_real, 0.0)  # no gradient through the reals


def _outs(key, b, head):
    k1, k2, k3 = jax.random.split(key, 3)
    cls = jax.random.normal(k1, (b, K))
    logit = jax.scipy.special.logsumexp(cls, -1) if head == 'kplus1' else \
        jax.random.normal(k2, (b,))
    return {'logit': logit, 'class_logits': cls, 'features': jax.random.normal(k3, (b, 5))}


def test_acgan_objective_adds_the_class_terms():
    adv = losses.adversarial_objective((losses.non_saturating,))
    obj = losses.class_objective(adv, 'acgan')
    real, fake = _outs(jax.random.PRNGKey(0), 4, 'acgan'), _outs(jax.random.PRNGKey(1), 4, 'acgan')
    yr, yf = jnp.array([0, 1, 2, 0]), jnp.array([2, 2, 1, 0])
    hp = {'class_weight': jnp.float32(0.5)}
    d, g, aux = obj(real, fake, yr, yf, hp)
    d0, g0, _ = losses.non_saturating(real['logit'], fake['logit'])
    ce_r = losses.class_cross_entropy(real['class_logits'], yr)
    ce_f = losses.class_cross_entropy(fake['class_logits'], yf)
    np.testing.assert_allclose(d, d0 + 0.5 * (ce_r + ce_f), rtol=1e-6)
    np.testing.assert_allclose(g, g0 + 0.5 * ce_f, rtol=1e-6)
    np.testing.assert_allclose(aux['g_class'], ce_f, rtol=1e-6)


def test_kplus1_objective_splits_the_labelled_rows():
    adv = losses.adversarial_objective((losses.non_saturating,))
    obj = losses.class_objective(adv, 'kplus1', feature_matching_g=True, labelled_rows=2)
    real = _outs(jax.random.PRNGKey(0), 6, 'kplus1')  # 4 unlabelled rows + 2 labelled
    fake = _outs(jax.random.PRNGKey(1), 4, 'kplus1')
    yr = jnp.array([-1, 1, -1, -1, 2, 0])
    d, g, aux = obj(real, fake, yr, None, {'class_weight': jnp.float32(1.0)})
    head = jax.tree.map(lambda a: a[:4], real)
    d0, _, _ = losses.non_saturating(head['logit'], fake['logit'])
    # Every labelled real row trains the classes (row 1 of the main stream kept its label).
    ce = losses.class_cross_entropy(real['class_logits'], yr)
    np.testing.assert_allclose(d, d0 + ce, rtol=1e-6)
    np.testing.assert_allclose(g, losses.feature_matching(head['features'], fake['features']),
                               rtol=1e-6)
    assert float(aux['g_class']) == 0.0


def _labelled_source(n=60):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n,) + VECTOR).astype(np.float32)
    return ArraySource(x, np.arange(n) % K, num_classes=K, name='toy train',
                       scaling=Scaling.identity())


def test_choose_labelled_is_balanced_and_seeded():
    labels = np.arange(60) % K
    a = choose_labelled(labels, 10, K, seed=0)
    assert len(a) == 10 and sorted(np.bincount(labels[a]).tolist()) == [3, 3, 4]
    np.testing.assert_array_equal(a, choose_labelled(labels, 10, K, seed=0))
    assert not np.array_equal(a, choose_labelled(labels, 10, K, seed=1))
    with pytest.raises(ConfigError, match='between the number of classes'):
        choose_labelled(labels, 2, K, seed=0)
    with pytest.raises(DataError, match='class 2 has 1 training examples'):
        choose_labelled(np.array([0] * 5 + [1] * 5 + [2]), 6, K, seed=0)


def test_partial_labels_hide_the_others():
    source = _labelled_source()
    wrapped = with_partial_labels(source, {'num_labels': 6, 'label_seed': 3})
    assert isinstance(wrapped, PartialLabels) and len(wrapped.labelled) == 6
    batch = wrapped.get_batch(np.arange(60))
    known = batch['label'] >= 0
    np.testing.assert_array_equal(np.flatnonzero(known), wrapped.labelled)
    np.testing.assert_array_equal(batch['label'][known], np.arange(60)[known] % K)
    assert with_partial_labels(source, {'num_labels': 0}) is source


def test_labelled_stream_rows_and_resume():
    wrapped = with_partial_labels(_labelled_source(), {'num_labels': 6, 'label_seed': 0})
    make = lambda position=0: BatchIterator(wrapped, 8, seed=1, position=position, prefetch=0,
                                            groups=2, labelled=wrapped.labelled,
                                            labelled_batch_size=3)
    it = make()
    batches = [next(it) for _ in range(5)]
    for b in batches:
        assert b['x'].shape == (2 * (4 + 3),) + VECTOR
        rows = b['label'].reshape(2, 7)
        assert np.all(rows[:, 4:] >= 0)  # the labelled stream's rows have labels
    seen = np.concatenate([it.indices_at(k).reshape(2, 7)[:, 4:].ravel() for k in range(5)])
    assert set(seen) == set(wrapped.labelled.tolist())
    # Every pass over the pool holds each labelled example once.
    assert sorted(seen[:6].tolist()) == sorted(wrapped.labelled.tolist())
    resumed = make(position=3)
    for k in (3, 4):
        got = next(resumed)
        np.testing.assert_array_equal(got['x'], batches[k]['x'])
    with pytest.raises(ConfigError, match='labelled stream needs both'):
        BatchIterator(wrapped, 8, seed=1, prefetch=0, labelled_batch_size=3)


def test_semi_supervised_step_and_classify():
    config = tiny_config('mlp', model__d_head='kplus1', loss__feature_matching=True,
                         data__num_labels=6, data__labelled_batch_size=2)
    gan = build_gan(config, VECTOR, K)
    assert gan.num_classes == 0 and gan.d_classes == K and gan.labelled_rows == 2
    state = create_state(config, gan)
    step = jax.jit(make_train_step(config, gan))
    batch = random_batch(config, VECTOR)  # 4 rows: 2 unlabelled + 2 labelled
    batch['label'] = np.array([[-1, -1, 1, 2]], np.int32)
    new, metrics = step(state, batch)
    assert {'d_class', 'g_feature_matching'} <= set(metrics)
    assert float(metrics['d_class']) > 0
    # The labels train D: other labels, other D.
    other, _ = step(state, dict(batch, label=np.array([[-1, -1, 0, 0]], np.int32)))
    assert not np.allclose(jax.tree.leaves(new.d_params)[0], jax.tree.leaves(other.d_params)[0])
    probs = make_classify_fn(gan)(new.d_params, new.d_state, batch['x'][0])
    assert probs.shape == (4, K)
    np.testing.assert_allclose(np.sum(probs, -1), 1.0, rtol=1e-5)
    plain = build_gan(tiny_config('mlp'), VECTOR, K)
    with pytest.raises(ConfigError, match='no class head'):
        make_classify_fn(plain)


def test_semi_supervised_step_with_a_gradient_penalty():
    """The penalty pairs reals and fakes row by row: the labelled rows stay out of it."""
    config = tiny_config('mlp', model__d_head='kplus1', data__num_labels=6,
                         data__labelled_batch_size=2, penalty__name='wgan_gp',
                         loss__name='wasserstein')
    gan = build_gan(config, VECTOR, K)
    state = create_state(config, gan)
    batch = random_batch(config, VECTOR)
    batch['label'] = np.array([[-1, -1, 1, 2]], np.int32)
    new, metrics = jax.jit(make_train_step(config, gan))(state, batch)
    assert np.isfinite(float(metrics['penalty'])) and float(metrics['penalty']) > 0


def test_acgan_step_reads_the_labels():
    config = tiny_config('mlp', model__conditional=True, model__d_head='acgan',
                         loss__class_weight=1.0)
    gan = build_gan(config, VECTOR, K)
    state = create_state(config, gan)
    step = jax.jit(make_train_step(config, gan))
    batch = random_batch(config, VECTOR)
    a, metrics = step(state, batch)
    assert {'d_class', 'g_class'} <= set(metrics)
    assert np.isfinite(float(metrics['g_class']))
    b, _ = step(state, dict(batch, label=(batch['label'] + 1) % K))
    assert not np.allclose(a.d_params['classifier']['kernel'], b.d_params['classifier']['kernel'])
    out, _ = apply_module(gan.discriminator, a.d_params, a.d_state, batch['x'][0], train=False)
    probs = make_classify_fn(gan)(a.d_params, a.d_state, batch['x'][0])
    np.testing.assert_allclose(probs, jax.nn.softmax(out['class_logits']), rtol=1e-6)


@pytest.mark.parametrize('fake_labels', ['uniform', 'data'])
def test_fakes_take_the_real_batch_classes_when_asked(fake_labels):
    """With train.fake_labels='data' every fake of an update is of its real batch's classes: a
    batch of class 2 only leaves the projection embeddings of other classes untouched (D and G
    updates, gradient penalty included), while uniform fakes reach them."""
    config = tiny_config('mlp', model__conditional=True, model__d_head='projection',
                         train__fake_labels=fake_labels, penalty__name='wgan_gp',
                         loss__name='wasserstein', data__batch_size=8)
    gan = build_gan(config, VECTOR, K)
    state = create_state(config, gan)
    batch = random_batch(config, VECTOR)
    batch['label'] = np.full_like(batch['label'], 2)
    new, _ = jax.jit(make_train_step(config, gan))(state, batch)
    moved = np.any(np.asarray(new.d_params['class_embed']['embedding'])
                   != np.asarray(state.d_params['class_embed']['embedding']), axis=1)
    assert moved[2]
    if fake_labels == 'data':
        assert not moved[np.arange(K) != 2].any()
    else:
        assert moved[np.arange(K) != 2].any()
