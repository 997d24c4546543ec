"""benchmarks/conv_variants.py: every conv formulation the benchmark times computes nn.Conv's
stride-1 'SAME' conv (values and gradients), and the CPU compiler options ganjax.parallel passes
change how convs run, not what they compute."""

import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import parallel
from util import ROOT

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import conv_variants as conv  # noqa: E402

IMPLS = sorted(conv.CONV_IMPLS)
HIGHEST = jax.lax.Precision.HIGHEST
# [batch, *spatial, in] per rank; odd and even sides, so that both SAME paddings are exercised.
INPUT_SHAPES = {1: (2, 7, 3), 2: (2, 5, 6, 3)}
FEATURES = 4


def _close(actual, desired):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=1e-5, atol=1e-5)


def _pair(rank, k, use_bias, impl):
    window = (k,) * rank
    ref = nn.Conv(FEATURES, window, padding='SAME', use_bias=use_bias, precision=HIGHEST)
    new = conv.PatchConv(FEATURES, window, use_bias=use_bias, precision=HIGHEST, impl=impl)
    return ref, new


@pytest.mark.parametrize('rank', [1, 2])
@pytest.mark.parametrize('impl', IMPLS)
def test_matches_flax_conv_values_and_gradients(impl, rank):
    x = jax.random.normal(jax.random.key(0), INPUT_SHAPES[rank])
    for k in (3, 1):
        for use_bias in (True, False):
            ref, new = _pair(rank, k, use_bias, impl)
            params = ref.init(jax.random.key(1), x)['params']
            if use_bias:  # a non-zero bias, so that adding it is checked too
                params = {**params, 'bias': jax.random.normal(jax.random.key(2), (FEATURES,))}
            new_params = new.init(jax.random.key(1), x)['params']
            assert jax.tree.map(jnp.shape, new_params) == jax.tree.map(jnp.shape, params)
            ct = jax.random.normal(jax.random.key(3), x.shape[:-1] + (FEATURES,))

            def loss(module, params, x):
                return jnp.sum(module.apply({'params': params}, x) * ct)

            _close(new.apply({'params': params}, x), ref.apply({'params': params}, x))
            g_new = jax.grad(lambda p, x: loss(new, p, x), argnums=(0, 1))(params, x)
            g_ref = jax.grad(lambda p, x: loss(ref, p, x), argnums=(0, 1))(params, x)
            jax.tree.map(_close, g_new, g_ref)


@pytest.mark.parametrize('impl', IMPLS)
def test_even_and_mixed_windows(impl):
    # SAME with an even window pads one more after than before, as lax.conv does.
    x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
    kernel = jax.random.normal(jax.random.key(1), (4, 2, 3, FEATURES))
    _close(conv.CONV_IMPLS[impl](x, kernel, HIGHEST), conv.conv_xla(x, kernel, HIGHEST))


@pytest.mark.parametrize('impl', IMPLS)
def test_inside_spectral_norm(impl):
    # nn.SpectralNorm finds the 'kernel' param through map_variables, whatever the module is.
    x = jax.random.normal(jax.random.key(0), INPUT_SHAPES[2])
    ref, new = _pair(2, 3, True, impl)
    ref_sn = nn.SpectralNorm(ref, collection_name='batch_stats')
    new_sn = nn.SpectralNorm(new, collection_name='batch_stats')
    variables = ref_sn.init(jax.random.key(1), x, update_stats=False)
    new_variables = new_sn.init(jax.random.key(1), x, update_stats=False)
    assert (jax.tree.map(jnp.shape, new_variables) == jax.tree.map(jnp.shape, variables))
    assert set(variables['batch_stats']) == {'layer_instance/kernel/u',
                                             'layer_instance/kernel/sigma'}
    # Lecun-normal init gives this kernel a spectral norm within 1e-6 of 1, which would make the
    # normalized and raw outputs indistinguishable: scale it so that the normalization shows.
    variables = {**variables, 'params': jax.tree.map(lambda p: 3.0 * p, variables['params'])}

    def run(module, params):
        y, updates = module.apply({'params': params, 'batch_stats': variables['batch_stats']}, x,
                                  update_stats=True, mutable=['batch_stats'])
        return y, updates

    y_ref, up_ref = run(ref_sn, variables['params'])
    y_new, up_new = run(new_sn, variables['params'])
    _close(y_new, y_ref)
    jax.tree.map(_close, up_new, up_ref)
    # The output used the normalized kernel, not the raw one.
    raw = new.apply({'params': variables['params']['layer_instance']}, x)
    assert not np.allclose(np.asarray(raw), np.asarray(y_new))
    g_ref = jax.grad(lambda p: jnp.sum(run(ref_sn, p)[0] ** 2))(variables['params'])
    g_new = jax.grad(lambda p: jnp.sum(run(new_sn, p)[0] ** 2))(variables['params'])
    jax.tree.map(_close, g_new, g_ref)


def test_batch_dims_int_kernel_size_and_dtype():
    # Like nn.Conv: an int kernel_size is a 1-D window; no or several batch axes are allowed.
    x = jax.random.normal(jax.random.key(0), (7, 3))
    ref = nn.Conv(FEATURES, 3, precision=HIGHEST)
    new = conv.PatchConv(FEATURES, 3, precision=HIGHEST)
    params = ref.init(jax.random.key(1), x)
    _close(new.apply(params, x), ref.apply(params, x))
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 6, 3))
    ref = nn.Conv(FEATURES, (3, 3), precision=HIGHEST)
    new = conv.PatchConv(FEATURES, (3, 3), precision=HIGHEST)
    params = ref.init(jax.random.key(1), x)
    _close(new.apply(params, x), ref.apply(params, x))
    y = conv.PatchConv(FEATURES, (3, 3), dtype=jnp.bfloat16).apply(params, x)
    assert y.dtype == jnp.bfloat16 and y.shape == (2, 3, 5, 6, FEATURES)


def test_unknown_impl():
    x = jnp.zeros((1, 4, 3))
    with pytest.raises(ValueError, match='unknown conv impl'):
        conv.PatchConv(FEATURES, (3,), impl='nope').init(jax.random.key(0), x)


def test_cpu_conv_compiler_options():
    # On the CPU: accepted by this jaxlib, and the program computes the same conv.
    options = parallel.cpu_conv_compiler_options('cpu')
    assert options == parallel.CPU_CONV_COMPILER_OPTIONS
    assert parallel.cpu_conv_compiler_options('gpu') is None
    if jax.default_backend() != 'cpu':
        return
    x = jax.random.normal(jax.random.key(0), INPUT_SHAPES[2])
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, FEATURES))

    def f(x, kernel):
        return jax.value_and_grad(lambda x, k: jnp.sum(conv.conv_xla(x, k) ** 2),
                                  argnums=(0, 1))(x, kernel)

    jax.tree.map(_close, jax.jit(f, compiler_options=options)(x, kernel), jax.jit(f)(x, kernel))
    # ... and the convolution leaves YNNPACK for XLA's own (Eigen) implementation (YNNPACK takes
    # the larger convolutions: the tiny one above is not handed to it even by default).
    x, kernel = jnp.zeros((2, 8, 8, 16)), jnp.zeros((3, 3, 16, 32))
    default = jax.jit(conv.conv_xla).lower(x, kernel).compile().as_text()
    eigen = jax.jit(conv.conv_xla, compiler_options=options).lower(x, kernel).compile().as_text()
    assert 'ynn_fusion' in default and 'ynn_fusion' not in eigen
