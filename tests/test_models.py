"""Tests of ganjax.models: shapes, dtypes, state collections, spectral norm, gradients, errors.

Shape and dtype checks trace with ``jax.eval_shape`` (nothing is compiled); numerical checks compile
one small function per case. Keys use the 'rbg' PRNG, whose initializers compile several times
faster on CPU than threefry's.
"""

from __future__ import annotations

import itertools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ganjax import models
from ganjax.errors import ConfigError
from ganjax.models import layers

# 4, not 2: with two examples BatchNorm maps every feature to +-1 and passes almost no gradient.
BATCH = 4

#: Every supported kind of data shape per architecture.
SHAPES = {
    'mlp': [(2,), (16,), (28, 28, 1)],
    'dcgan': [(28, 28, 1), (32, 32, 3), (64, 64, 3), (64, 4)],
    'resnet': [(32, 32, 3), (64, 4)],
    'resnet1d': [(16, 4)],
}
CASES = [(arch, shape) for arch in SHAPES for shape in SHAPES[arch]]


def _id(arch: str, shape: tuple[int, ...]) -> str:
    return f'{arch}-{"x".join(map(str, shape))}'


def _key(seed: int = 0) -> jax.Array:
    return jax.random.key(seed, impl='rbg')


def _config(arch: str, **overrides) -> ml_collections.ConfigDict:
    values = dict(models.model_defaults(), arch=arch)
    values.update(models.TINY_MODEL_OVERRIDES[arch])
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def _abstract(g, d, shape, latent_dim):
    """Variables and outputs of G and D in train and eval mode, by tracing only."""
    z = jax.ShapeDtypeStruct((BATCH, latent_dim), jnp.float32)
    x = jax.ShapeDtypeStruct((BATCH, *shape), jnp.float32)
    gv = jax.eval_shape(lambda k, z: g.init(k, z, train=False), _key(), z)
    dv = jax.eval_shape(lambda k, x: d.init(k, x, train=False), _key(1), x)
    out = {
        'gv': gv, 'dv': dv,
        'g_train': jax.eval_shape(
            lambda v, z: g.apply(v, z, train=True, mutable=['batch_stats']), gv, z),
        'g_eval': jax.eval_shape(lambda v, z: g.apply(v, z, train=False), gv, z),
        'd_train': jax.eval_shape(
            lambda v, x: d.apply(v, x, train=True, mutable=['batch_stats']), dv, x),
        'd_eval': jax.eval_shape(lambda v, x: d.apply(v, x, train=False), dv, x),
    }
    return out


def _leaves_with_paths(tree):
    return [(jax.tree_util.keystr(p), leaf)
            for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _kernel_paths(params) -> list[str]:
    return [p for p, leaf in _leaves_with_paths(params) if p.endswith("['kernel']")]


def _sn_names(batch_stats, suffix: str) -> list[str]:
    """Spectral-norm entries ('<layer>/kernel/u' or '/sigma') anywhere in batch_stats."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(batch_stats))
    return [k[-1] for k in flat if k[-1].endswith(suffix)]


def _matmul_dtypes(jaxpr) -> list[str]:
    """Operand dtypes of every conv / dot in a (closed) jaxpr, nested jaxprs included."""
    found = []

    def walk(jp):
        for eqn in jp.eqns:
            if eqn.primitive.name in ('conv_general_dilated', 'dot_general'):
                found.append(str(eqn.invars[0].aval.dtype))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else [value]:
                    if isinstance(sub, jax.extend.core.ClosedJaxpr):
                        walk(sub.jaxpr)
                    elif isinstance(sub, jax.extend.core.Jaxpr):
                        walk(sub)

    walk(jaxpr.jaxpr)
    return found


# ---------------------------------------------------------------------------------------------
# depth_to_space and friends


def _depth_to_space_loop(x: np.ndarray, r: int) -> np.ndarray:
    """Element-by-element reference: channel index = row-major (offsets..., channel)."""
    batch, *spatial, channels = x.shape
    d = len(spatial)
    out_c = channels // r ** d
    out = np.zeros((batch, *(s * r for s in spatial), out_c), x.dtype)
    for b in range(batch):
        for s in np.ndindex(*spatial):
            for o in np.ndindex(*([r] * d)):
                phase = 0
                for oi in o:
                    phase = phase * r + oi
                for c in range(out_c):
                    pos = tuple(si * r + oi for si, oi in zip(s, o))
                    out[(b, *pos, c)] = x[(b, *s, phase * out_c + c)]
    return out


@pytest.mark.parametrize('spatial,r,out_c', [
    ((5,), 2, 3), ((3,), 3, 2), ((2, 3), 2, 3), ((2, 2), 3, 1), ((2, 1, 3), 2, 2)])
def test_depth_to_space_matches_loop(spatial, r, out_c):
    channels = out_c * r ** len(spatial)
    x = np.random.default_rng(0).normal(size=(2, *spatial, channels)).astype(np.float32)
    got = np.asarray(layers.depth_to_space(jnp.asarray(x), r))
    np.testing.assert_array_equal(got, _depth_to_space_loop(x, r))
    np.testing.assert_array_equal(np.asarray(layers.space_to_depth(jnp.asarray(got), r)), x)


def test_depth_to_space_rejects_bad_channels():
    with pytest.raises(ValueError, match='not divisible'):
        layers.depth_to_space(jnp.zeros((1, 4, 4, 6)), 2)


def test_nearest_upsample_is_depth_to_space_of_tiled_channels():
    x = jnp.arange(2 * 3 * 2 * 5, dtype=jnp.float32).reshape(2, 3, 2, 5)
    np.testing.assert_array_equal(layers.nearest_upsample(x, 2),
                                  layers.depth_to_space(jnp.tile(x, (1, 1, 1, 4)), 2))
    np.testing.assert_array_equal(layers.nearest_upsample(x, 2),
                                  np.repeat(np.repeat(np.asarray(x), 2, 1), 2, 2))


# ---------------------------------------------------------------------------------------------
# upsampling layers


@pytest.mark.parametrize('mode,rank,spectral_norm',
                         [(m, r, sn) for m in layers.UPSAMPLE for r in (1, 2)
                          for sn in (False, True)])
def test_upsample_shapes_and_variables(mode, rank, spectral_norm):
    spatial = (5, 6)[:rank]
    layer = layers.make_upsample(mode, 7, spectral_norm=spectral_norm)
    x = jax.ShapeDtypeStruct((BATCH, *spatial, 3), jnp.float32)
    variables = jax.eval_shape(lambda k, x: layer.init(k, x), _key(), x)
    y = jax.eval_shape(lambda v, x: layer.apply(v, x, train=True, mutable=['batch_stats'])[0],
                       variables, x)
    assert y.shape == (BATCH, *(2 * s for s in spatial), 7)
    assert y.dtype == jnp.float32
    kernels = _kernel_paths(variables['params'])
    assert len(kernels) == 1
    stats = variables.get('batch_stats', {})
    assert len(_sn_names(stats, '/u')) == (1 if spectral_norm else 0)
    assert len(_sn_names(stats, '/sigma')) == (1 if spectral_norm else 0)


@pytest.mark.parametrize('rank', [1, 2])
def test_conv_d2s_expresses_any_4x4_stride2_transposed_conv(rank):
    """conv_d2s with the right 3x3 kernel reproduces the 'transpose' layer exactly.

    For output phase 0 a 4-tap stride-2 'SAME' transposed conv combines inputs (i-1, i) with taps
    (0, 2), phase 1 combines (i, i+1) with taps (1, 3); in the 3-tap window (i-1, i, i+1) of
    conv_d2s that is the tap map below.
    """
    tap_map = {0: {0: 0, 1: 2}, 1: {1: 1, 2: 3}}  # phase -> {conv_d2s tap: transpose tap}
    c_in, c_out = 3, 2
    x = jax.random.normal(_key(4), (BATCH, *(5, 4)[:rank], c_in))
    transpose = layers.make_upsample('transpose', c_out)
    t_params = transpose.init(_key(5), x)['params']
    t_params = {'conv': {'kernel': t_params['conv']['kernel'],
                         'bias': jax.random.normal(_key(6), (c_out,))}}
    kt = np.asarray(t_params['conv']['kernel'])
    kd = np.zeros((3,) * rank + (c_in, c_out * 2 ** rank), np.float32)
    for phase in np.ndindex(*([2] * rank)):
        index = int(np.ravel_multi_index(phase, [2] * rank))
        for taps in itertools.product(*(tap_map[p].items() for p in phase)):
            d_tap = tuple(j for j, _ in taps)
            t_tap = tuple(t for _, t in taps)
            kd[d_tap + (slice(None), slice(index * c_out, (index + 1) * c_out))] = kt[t_tap]
    d_params = {'conv': {'kernel': jnp.asarray(kd),
                         'bias': jnp.tile(t_params['conv']['bias'], 2 ** rank)}}
    d2s = layers.make_upsample('conv_d2s', c_out)
    np.testing.assert_allclose(d2s.apply({'params': d_params}, x),
                               transpose.apply({'params': t_params}, x), rtol=1e-5, atol=1e-5)


def test_upsample_numerics_all_modes():
    """Every mode runs on real numbers in ranks 1 and 2; conv_d2s starts artifact-free (ICNR)."""
    inputs = {1: jax.random.normal(_key(1), (BATCH, 5, 3)),
              2: jax.random.normal(_key(2), (BATCH, 4, 5, 3))}
    cases = list(itertools.product(layers.UPSAMPLE, (1, 2)))

    @jax.jit
    def run(key):
        outs = {}
        for mode, rank in cases:
            layer = layers.make_upsample(mode, 4)
            variables = layer.init(key, inputs[rank])
            outs[mode, rank] = layer.apply(variables, inputs[rank])
        return outs

    outs = run(_key())
    for (mode, rank), y in outs.items():
        y = np.asarray(y)
        assert y.shape == (BATCH, *(2 * s for s in inputs[rank].shape[1:-1]), 4), (mode, rank)
        assert np.all(np.isfinite(y)) and np.std(y) > 0, (mode, rank)
        # Sub-pixel phases: output[2i + a] for a in {0, 1}.
        phases = y.reshape(BATCH, *sum(([s // 2, 2] for s in y.shape[1:-1]), []), 4)
        first = phases[(slice(None),) + (slice(None), slice(0, 1)) * rank]
        constant_blocks = np.allclose(phases, first, atol=1e-6)
        # ICNR makes conv_d2s start as "conv, then nearest x2": all phases of a 2x2 block are
        # equal. A freshly initialised transposed conv's phases differ (the checkerboard source).
        if mode == 'conv_d2s':
            assert constant_blocks
        if mode == 'transpose':
            assert not constant_blocks


# ---------------------------------------------------------------------------------------------
# models: shapes, dtypes, variables (traced only)


def test_every_architecture_is_tested():
    assert set(SHAPES) == set(models.ARCHITECTURES) == set(models.TINY_MODEL_OVERRIDES)


@pytest.mark.parametrize('arch,shape', CASES, ids=[_id(*c) for c in CASES])
def test_shapes_dtypes_and_collections(arch, shape):
    cfg = _config(arch)
    g, d = models.build_models(cfg, shape)
    out = _abstract(g, d, shape, cfg.latent_dim)
    x_train, g_updates = out['g_train']
    d_train, d_updates = out['d_train']
    for x in (x_train, out['g_eval']):
        assert x.shape == (BATCH, *shape) and x.dtype == jnp.float32
    for d_out in (d_train, out['d_eval']):
        assert set(d_out) == {'logit', 'features'}
        assert d_out['logit'].shape == (BATCH,) and d_out['logit'].dtype == jnp.float32
        assert d_out['features'].shape[0] == BATCH and d_out['features'].ndim == 2
    for variables in (out['gv'], out['dv']):
        assert set(variables) <= {'params', 'batch_stats'}
        assert all(leaf.dtype == jnp.float32 for _, leaf in _leaves_with_paths(variables))
    # Train mode returns new values for exactly the existing state.
    assert (jax.tree_util.tree_structure(g_updates.get('batch_stats', {}))
            == jax.tree_util.tree_structure(out['gv'].get('batch_stats', {})))
    assert (jax.tree_util.tree_structure(d_updates.get('batch_stats', {}))
            == jax.tree_util.tree_structure(out['dv'].get('batch_stats', {})))


@pytest.mark.parametrize('arch,shape', [(a, SHAPES[a][-1]) for a in SHAPES],
                         ids=[_id(a, SHAPES[a][-1]) for a in SHAPES])
def test_bfloat16_computation_float32_params_and_logits(arch, shape):
    cfg = _config(arch, dtype='bfloat16', param_dtype='float32')
    g, d = models.build_models(cfg, shape)
    out = _abstract(g, d, shape, cfg.latent_dim)
    assert out['g_eval'].dtype == jnp.float32
    assert out['d_eval']['logit'].dtype == jnp.float32
    assert out['d_eval']['features'].dtype == jnp.float32
    for variables in (out['gv'], out['dv']):
        assert all(leaf.dtype == jnp.float32 for _, leaf in _leaves_with_paths(variables))
    z = jax.ShapeDtypeStruct((BATCH, cfg.latent_dim), jnp.float32)
    x = jax.ShapeDtypeStruct((BATCH, *shape), jnp.float32)
    g_ops = _matmul_dtypes(jax.make_jaxpr(lambda v, z: g.apply(v, z, train=False))(out['gv'], z))
    d_ops = _matmul_dtypes(jax.make_jaxpr(lambda v, x: d.apply(v, x, train=False))(out['dv'], x))
    assert g_ops and set(g_ops) == {'bfloat16'}
    # Only D's final logit layer runs in float32.
    assert d_ops.count('float32') == 1 and d_ops.count('bfloat16') == len(d_ops) - 1


def test_float32_config_has_no_bfloat16_ops():
    cfg = _config('dcgan')
    g, _ = models.build_models(cfg, (32, 32, 3))
    z = jax.ShapeDtypeStruct((BATCH, cfg.latent_dim), jnp.float32)
    gv = jax.eval_shape(lambda k, z: g.init(k, z, train=False), _key(), z)
    ops = _matmul_dtypes(jax.make_jaxpr(lambda v, z: g.apply(v, z, train=False))(gv, z))
    assert set(ops) == {'float32'}


def test_param_dtype_bfloat16_is_honoured():
    cfg = _config('mlp', param_dtype='bfloat16')
    g, d = models.build_models(cfg, (2,))
    out = _abstract(g, d, (2,), cfg.latent_dim)
    dtypes = {leaf.dtype for _, leaf in _leaves_with_paths(out['gv']['params'])}
    assert dtypes == {jnp.dtype(jnp.bfloat16)}
    assert out['d_eval']['logit'].dtype == jnp.float32


@pytest.mark.parametrize('arch,shape', [(a, SHAPES[a][0]) for a in SHAPES],
                         ids=[_id(a, SHAPES[a][0]) for a in SHAPES])
@pytest.mark.parametrize('g_sn,d_sn', [(False, False), (True, False), (False, True)])
def test_spectral_norm_variables(arch, shape, g_sn, d_sn):
    cfg = _config(arch, g_spectral_norm=g_sn, d_spectral_norm=d_sn, g_norm='none', d_norm='none')
    g, d = models.build_models(cfg, shape)
    out = _abstract(g, d, shape, cfg.latent_dim)
    for variables, sn in ((out['gv'], g_sn), (out['dv'], d_sn)):
        stats = variables.get('batch_stats', {})
        kernels = _kernel_paths(variables['params'])
        assert kernels
        # One u vector and one sigma per kernel (every Dense / conv) when on; nothing when off
        # (no normalization layers either, so the collection is then empty).
        assert len(_sn_names(stats, '/kernel/u')) == (len(kernels) if sn else 0)
        assert len(_sn_names(stats, '/kernel/sigma')) == (len(kernels) if sn else 0)
        if not sn:
            assert not jax.tree_util.tree_leaves(stats)


def test_upsample_modes_inside_dcgan():
    for mode, shape in itertools.product(layers.UPSAMPLE, [(32, 32, 3), (64, 4)]):
        cfg = _config('dcgan', upsample=mode)
        g, d = models.build_models(cfg, shape)
        out = _abstract(g, d, shape, cfg.latent_dim)
        assert out['g_eval'].shape == (BATCH, *shape), mode


@pytest.mark.parametrize('spatial,base,stages', [
    ((28, 28), (7, 7), 2), ((32, 32), (4, 4), 3), ((64, 64), (4, 4), 4), ((64,), (4,), 4),
    ((100,), (25,), 2), ((28, 32), (7, 8), 2), ((8,), (4,), 1)])
def test_dcgan_plan(spatial, base, stages):
    assert models.dcgan_plan(spatial) == (base, stages)


def test_builders_accept_plain_mappings():
    g, d = models.build_models({'arch': 'mlp', 'latent_dim': 3, 'g_features': 5}, (4,))
    assert (g.latent_dim, g.features, g.data_shape) == (3, 5, (4,))
    assert isinstance(d, models.MLPDiscriminator)


# ---------------------------------------------------------------------------------------------
# models: numerics (compiled)


def _exercise(g, d, shape, latent_dim):
    """Init, train/eval passes of G and D and the gradients of a GAN loss, in one compile."""

    def run(key):
        kg, kd, kz = jax.random.split(key, 3)
        z = jax.random.normal(kz, (BATCH, latent_dim))
        gv = g.init(kg, z, train=False)
        dv = d.init(kd, jnp.zeros((BATCH, *shape)), train=False)
        x, g_new = g.apply(gv, z, train=True, mutable=['batch_stats'])
        x_eval, g_eval_new = g.apply(gv, z, train=False, mutable=['batch_stats'])
        logits, d_new = d.apply(dv, x, train=True, mutable=['batch_stats'])
        logits_eval, d_eval_new = d.apply(dv, x, train=False, mutable=['batch_stats'])
        logits, logits_eval = logits['logit'], logits_eval['logit']

        def g_loss(g_params, d_params):
            fake, _ = g.apply({**gv, 'params': g_params}, z, train=True, mutable=['batch_stats'])
            out, _ = d.apply({**dv, 'params': d_params}, fake, train=True,
                             mutable=['batch_stats'])
            return jnp.mean(jax.nn.softplus(-out['logit']))

        g_grads, d_grads = jax.grad(g_loss, argnums=(0, 1))(gv['params'], dv['params'])
        return dict(gv=gv, dv=dv, x=x, x_eval=x_eval, logits=logits, logits_eval=logits_eval,
                    g_new=g_new, g_eval_new=g_eval_new, d_new=d_new, d_eval_new=d_eval_new,
                    g_grads=g_grads, d_grads=d_grads)

    return jax.tree_util.tree_map(np.asarray, jax.jit(run)(_key()))


def _assert_state_updates(old, train_new, eval_new, where):
    old = old.get('batch_stats', {})
    assert jax.tree_util.tree_leaves(old), f'{where}: expected state in batch_stats'
    # Eval mode writes back exactly what it read.
    jax.tree_util.tree_map(np.testing.assert_array_equal, eval_new['batch_stats'], old)
    for (path, a), (_, b) in zip(_leaves_with_paths(old),
                                 _leaves_with_paths(train_new['batch_stats'])):
        # sigma is left out: nn.SpectralNorm stores the kernel divided by its first estimate at
        # init, so the first update of sigma is 1 again.
        if path.endswith("mean']") or path.endswith("var']") or path.endswith("/u']"):
            assert np.max(np.abs(a - b)) > 0, f'{where}: {path} not updated in train mode'


NUMERIC_CASES = [
    ('mlp', (2,), {}),
    ('dcgan', (28, 28, 1), dict(dtype='bfloat16', d_norm='layer')),
    ('dcgan', (64, 4), dict(upsample='transpose', g_spectral_norm=True)),
    # SNGAN's discriminator: spectral norm, no normalization layers.
    ('resnet', (32, 32, 3), dict(upsample='resize_conv', d_norm='none', d_spectral_norm=True)),
]


@pytest.mark.parametrize('arch,shape,overrides', NUMERIC_CASES,
                         ids=[_id(a, s) for a, s, _ in NUMERIC_CASES])
def test_numerics_state_and_gradient_flow(arch, shape, overrides):
    cfg = _config(arch, **overrides)
    g, d = models.build_models(cfg, shape)
    r = _exercise(g, d, shape, cfg.latent_dim)
    for x in (r['x'], r['x_eval']):
        assert x.shape == (BATCH, *shape) and x.dtype == np.float32
        assert np.all(np.abs(x) <= 1.0) and np.std(x) > 0
    for logits in (r['logits'], r['logits_eval']):
        assert logits.shape == (BATCH,) and logits.dtype == np.float32
        assert np.all(np.isfinite(logits))
    _assert_state_updates(r['gv'], r['g_new'], r['g_eval_new'], 'G')
    if 'batch_stats' in r['dv']:
        _assert_state_updates(r['dv'], r['d_new'], r['d_eval_new'], 'D')
    for name, grads in (('G', r['g_grads']), ('D', r['d_grads'])):
        leaves = _leaves_with_paths(grads)
        assert all(np.all(np.isfinite(grad)) for _, grad in leaves), f'{name}: non-finite grads'
        largest = max(np.max(np.abs(grad)) for _, grad in leaves)
        assert largest > 1e-6, f'{name}: vanishing gradients (largest {largest})'
        for path, grad in leaves:
            # A parameter whose effect a normalization cancels (a bias before BatchNorm) gets a
            # gradient of rounding-error size, about 1e-7 of the others; live ones are > 1e-4.
            assert np.max(np.abs(grad)) > 1e-5 * largest, f'{name}{path}: no gradient'


def test_spectral_norm_sigma_converges_to_top_singular_value():
    cfg = _config('mlp', d_spectral_norm=True, d_norm='none')
    _, d = models.build_models(cfg, (6,))
    x = jax.random.normal(_key(3), (BATCH, 6))
    variables = d.init(_key(), x, train=False)

    @jax.jit
    def step(variables):
        _, new = d.apply(variables, x, train=True, mutable=['batch_stats'])
        return {**variables, **new}

    for _ in range(40):
        variables = step(variables)
    stats = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables['batch_stats']))
    params = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables['params']))
    checked = 0
    for key, sigma in stats.items():
        if key[-1].endswith('/kernel/sigma'):
            layer = key[-1].split('/')[0]
            kernel = np.asarray(params[(*key[:-2], layer, 'kernel')])
            top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
            np.testing.assert_allclose(float(sigma), top, rtol=1e-3)
            checked += 1
    assert checked == len(_kernel_paths(variables['params']))


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize('arch,shape,overrides,match', [
    ('gan9000', (2,), {}, r"model\.arch='gan9000' is not one of \['dcgan', 'mlp', 'resnet', 'resnet1d'\]"),
    ('dcgan', (32, 32, 3), dict(upsample='bilinear'), r"model\.upsample='bilinear' is not one of .*conv_d2s"),
    ('resnet', (16,), {}, 'vector'),
    ('dcgan', (2,), {}, 'vector'),
    ('resnet', (28, 28, 1), {}, 'divisible by 8'),
    ('dcgan', (6, 6, 3), {}, r'cannot generate spatial shape \(6, 6\)'),
    ('dcgan', (32, 32, 3), dict(g_norm='group'), r"model\.g_norm='group'"),
    ('mlp', (2,), dict(d_norm='batchnorm'), r"model\.d_norm='batchnorm' is not one of .*did you mean batch"),
    ('mlp', (2,), dict(output_activation='sigmoid'), 'output_activation'),
    ('mlp', (2,), dict(dtype='float13'), r"model\.dtype='float13'"),
    ('mlp', (2,), dict(dtype='int32'), 'floating-point'),
    ('mlp', (2,), dict(latent_dim=0), r'model\.latent_dim must be a positive integer'),
    ('mlp', (2,), dict(d_spectral_norm='yes'), r'model\.d_spectral_norm must be True or False'),
    ('mlp', (0,), {}, 'positive sizes'),
    ('mlp', (5,), dict(output_activation='library_size'), r'needs model\.library_size > 0'),
    ('mlp', (5,), dict(g_widths=(8, 0)), r'model\.g_widths must be a tuple of positive'),
    ('mlp', (5,), dict(g_residual=1), r'model\.g_residual must be True or False'),
])
def test_config_errors(arch, shape, overrides, match):
    cfg = ml_collections.ConfigDict(dict(models.model_defaults(), arch=arch, **overrides))
    with pytest.raises(ConfigError, match=match):
        models.build_models(cfg, shape)


def test_wrong_latent_size_and_unknown_upsample_layer():
    g, _ = models.build_models(_config('mlp'), (2,))
    with pytest.raises(ConfigError, match=r'expects z of shape \[batch, 8\]'):
        jax.eval_shape(lambda k: g.init(k, jnp.zeros((BATCH, 9)), train=False), _key())
    with pytest.raises(ConfigError, match=r"model\.upsample='pixel_magic' is not one of"):
        layers.make_upsample('pixel_magic', 4)


# ---------------------------------------------------------------------------------------------
# discriminator downsampling


@pytest.mark.parametrize('rank', [1, 2])
def test_space_to_depth_patches_are_the_strided_conv_window(rank):
    """Each output position's patch holds exactly the 4^rank inputs 2o-2 .. 2o+1 of a 4x4 stride-2
    conv padded (2, 0), each once: so a Dense layer on the patches is that conv."""
    from ganjax.models import dcgan
    _, prepare = dcgan.DOWNSAMPLE['space_to_depth'](rank)
    size, channels = 8, 2
    shape = (size,) * rank + (channels,)
    n_inputs = int(np.prod(shape))
    # One-hot images: image k has a 1 at flat input position k.
    eye = np.eye(n_inputs, dtype=np.float32).reshape((n_inputs,) + shape)
    patches = np.asarray(prepare(jnp.asarray(eye)))
    out = size // 2
    assert patches.shape == (n_inputs,) + (out,) * rank + (4 ** rank * channels,)
    for k in range(n_inputs):
        pos = np.unravel_index(k, shape)[:rank]
        hits = np.argwhere(patches[k] == 1)
        assert np.all(patches[k][patches[k] != 1] == 0)
        expected = {o for o in itertools.product(range(out), repeat=rank)
                    if all(2 * oi - 2 <= p <= 2 * oi + 1 for oi, p in zip(o, pos))}
        assert {tuple(h[:rank]) for h in hits} == expected
        assert len(hits) == len(expected)  # once per output position that sees it
    # Every slot of every patch is an input pixel or zero padding, and no slot repeats a pixel.
    for o in itertools.product(range(out), repeat=rank):
        sources = patches[(slice(None),) + o]  # [n_inputs, slots]
        assert np.all(sources.sum(axis=0) <= 1)
        in_bounds = np.prod([min(2 * oi + 1, size - 1) - max(2 * oi - 2, 0) + 1 for oi in o])
        assert sources.sum() == in_bounds * channels


def test_discriminator_downsample_modes_match_in_size():
    counts = {}
    for downsample in ('space_to_depth', 'strided'):
        cfg = _config('dcgan', downsample=downsample, **models.TINY_MODEL_OVERRIDES['dcgan'])
        _, d = models.build_models(cfg, (16, 16, 3))
        variables = d.init(_key(), jnp.zeros((BATCH, 16, 16, 3)), train=False)
        out, _ = d.apply(variables, jnp.ones((BATCH, 16, 16, 3)), train=True,
                         mutable=['batch_stats'])
        logits = out['logit']
        assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
        counts[downsample] = sum(x.size for x in jax.tree.leaves(variables['params']))
    assert counts['space_to_depth'] == counts['strided']


@pytest.mark.parametrize('rank', [1, 2])
def test_transpose_phases_is_the_transposed_conv(rank):
    """'transpose_phases' has the parameters of 'transpose' and computes the same layer."""
    c_in, c_out = 3, 2
    x = jax.random.normal(_key(7), (BATCH, *(5, 4)[:rank], c_in))
    transpose = layers.make_upsample('transpose', c_out)
    phases = layers.make_upsample('transpose_phases', c_out)
    params = transpose.init(_key(8), x)['params']
    params = {'conv': {'kernel': params['conv']['kernel'],
                       'bias': jax.random.normal(_key(9), (c_out,))}}
    own = phases.init(_key(8), x)['params']
    assert jax.tree.map(jnp.shape, own) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(phases.apply({'params': params}, x),
                               transpose.apply({'params': params}, x), rtol=1e-5, atol=1e-5)
    # Gradients with respect to the input and the kernel too.
    grad = lambda layer: jax.grad(lambda p, v: jnp.sum(jnp.sin(layer.apply({'params': p}, v))),
                                  argnums=(0, 1))(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 grad(phases), grad(transpose))


@pytest.mark.parametrize('activation', layers.OUTPUT_ACTIVATIONS)
def test_every_output_activation_with_mlp_widths_and_residual(activation):
    """Each output layer keeps its promise (range, sums) and passes gradients, in an MLP with
    per-layer widths and CTGAN's concatenating residual layers."""
    cfg = _config('mlp', g_widths=(8, 16), d_widths=(16, 4), g_residual=True,
                  output_activation=activation, library_size=50.0)
    g, d = models.build_models(cfg, (6,))
    z = jax.random.normal(_key(), (BATCH, cfg.latent_dim))
    gv = g.init(_key(), z, train=False)
    # Residual layers: each hidden Dense reads the previous output and input, concatenated.
    kernels = [gv['params'][f'dense{i}']['kernel'].shape for i in range(2)] + [
        gv['params']['out']['kernel'].shape]
    assert kernels == [(cfg.latent_dim, 8), (8 + cfg.latent_dim, 16),
                       (16 + 8 + cfg.latent_dim, 6)]
    dv = d.init(_key(), jnp.zeros((BATCH, 6)), train=False)
    assert [dv['params'][f'dense{i}']['kernel'].shape for i in range(2)] == [(6, 16), (16, 4)]
    x = np.asarray(g.apply(gv, z, train=False))
    if activation == 'tanh':
        assert np.all(np.abs(x) <= 1)
    if activation in ('relu', 'library_size'):
        assert np.all(x >= 0) and np.any(x == 0)
    if activation == 'library_size':
        np.testing.assert_allclose(x.sum(1), 50.0, rtol=1e-5)

    def loss(params):
        out = g.apply({**gv, 'params': params}, z, train=False)
        return jnp.sum(out * jnp.arange(6.0))
    grads = jax.tree_util.tree_leaves(jax.grad(loss)(gv['params']))
    assert all(np.all(np.isfinite(np.asarray(gr))) for gr in grads)
    assert max(float(np.max(np.abs(gr))) for gr in grads) > 0
