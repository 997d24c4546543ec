"""The PyTorch peers of benchmarks/peers/torch_gan.py are ganjax's models and step in PyTorch."""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip('torch')

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ganjax import train_step  # noqa: E402
from ganjax.models import TINY_MODEL_OVERRIDES  # noqa: E402
from ganjax.models.dcgan import DOWNSAMPLE  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'benchmarks', 'peers'))
import torch_gan  # noqa: E402

MODELS = sorted(torch_gan.MODELS)


@pytest.fixture(autouse=True, scope='module')
def _one_torch_thread():
    # These models are tiny: one thread is faster, and immune to OpenMP's slowdowns when the
    # cores are shared with other work (JAX's threads, other tests).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ganjax_shapes(config, data_shape):
    """Parameter shapes and output shapes of ganjax's G and D, without computing anything."""
    gan = train_step.build_gan(config, data_shape)
    state = jax.eval_shape(lambda: train_step.create_state(config, gan))
    z = jax.ShapeDtypeStruct((2, config.model.latent_dim), jnp.float32)
    x = jax.ShapeDtypeStruct((2,) + tuple(data_shape), jnp.float32)
    g_out = jax.eval_shape(lambda p, s, v: gan.generator.apply({'params': p, **s}, v, train=False),
                           state.g_params, state.g_state, z)
    d_out = jax.eval_shape(
        lambda p, s, v: gan.discriminator.apply({'params': p, **s}, v, train=False)['logit'],
        state.d_params, state.d_state, x)
    return state, g_out.shape, d_out.shape


def _sizes(leaves):
    return sorted(int(np.prod(np.shape(leaf))) for leaf in leaves)


@pytest.mark.parametrize('model', MODELS)
def test_parameters_and_shapes_equal_ganjax(model):
    config, shape = torch_gan.load_config(model)
    G, D = torch_gan.build_models(config, shape)
    state, g_shape, d_shape = _ganjax_shapes(config, shape)
    for name, tree, module in (('G', state.g_params, G), ('D', state.d_params, D)):
        jax_sizes = _sizes(jax.tree.leaves(tree))
        torch_sizes = _sizes(list(module.parameters()))
        # Same number of parameters, and the same multiset of tensor sizes.
        assert sum(torch_sizes) == sum(jax_sizes), name
        assert torch_sizes == jax_sizes, name
    h, w, c = shape
    with torch.no_grad():
        x = G.eval()(torch.zeros(2, config.model.latent_dim))
        logits = D.eval()(torch.zeros(2, c, h, w))
    assert tuple(x.permute(0, 2, 3, 1).shape) == tuple(g_shape) == (2, h, w, c)
    assert tuple(logits.shape) == tuple(d_shape) == (2,)


def test_pytorch_example_models():
    config, shape = torch_gan.load_config('dcgan64')
    G, D = torch_gan.build_models(config, shape, layers='pytorch_example')
    # The parameter counts pytorch/examples' DCGAN prints for nz=100, ngf=ndf=64, nc=3.
    assert torch_gan.count_params(G) == 3576704
    assert torch_gan.count_params(D) == 2765568
    with torch.no_grad():
        assert G.eval()(torch.zeros(2, 100)).shape == (2, 3, 64, 64)
        assert D.eval()(torch.zeros(2, 3, 64, 64)).shape == (2,)


@pytest.mark.parametrize('model', MODELS)
def test_one_training_step(model):
    torch.manual_seed(0)
    config, shape = torch_gan.load_config(model)
    config.model.update(TINY_MODEL_OVERRIDES[config.model.arch])  # n_critic, loss etc. unchanged
    G, D = torch_gan.build_models(config, shape)
    trainer = torch_gan.GANTrainer(config, G, D, batch_size=2)
    assert trainer.n_critic == config.train.n_critic
    h, w, c = shape
    real = torch.randint(0, 256, (trainer.n_critic, 2, c, h, w), dtype=torch.uint8)
    g_before = [p.detach().clone() for p in G.parameters()]
    d_before = [p.detach().clone() for p in D.parameters()]
    d_loss, g_loss = trainer.step(real)
    assert np.isfinite(float(d_loss)) and np.isfinite(float(g_loss))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    assert all(p.requires_grad for p in D.parameters())
    # The EMA moved by the warm-up weight (1 - 1/10) towards the new parameters.
    p, e, p0 = next(G.parameters()).detach(), trainer.ema_params[0], g_before[0]
    torch.testing.assert_close(e, p0 + 0.9 * (p - p0))


@pytest.mark.parametrize('model', MODELS)
def test_same_function_as_ganjax(model):
    """With ganjax's variables copied in, the peer computes ganjax's G and D (train and eval)."""
    config, shape = torch_gan.load_config(model)
    config.model.update(TINY_MODEL_OVERRIDES[config.model.arch])
    # The two libraries' spectral-norm power iterations differ (see torch_gan.maybe_sn).
    config.model.d_spectral_norm = False
    gan = train_step.build_gan(config, shape)
    state = jax.jit(lambda: train_step.create_state(config, gan))()
    G, D = torch_gan.build_models(config, shape)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, config.model.latent_dim)).astype(np.float32)
    x = rng.uniform(-1, 1, size=(4,) + shape).astype(np.float32)

    @jax.jit
    def reference(state, z, x):
        out = {}
        for train in (True, False):
            kwargs = {'mutable': ['batch_stats']} if train else {}
            g = gan.generator.apply({'params': state.g_params, **state.g_state}, z, train=train,
                                    **kwargs)
            d = gan.discriminator.apply({'params': state.d_params, **state.d_state}, x,
                                        train=train, **kwargs)
            out[train] = (g[0] if train else g, (d[0] if train else d)['logit'])
        return out

    refs = jax.device_get(reference(state, z, x))
    for train in (True, False):
        # Reloaded each time: torch's BatchNorm updates its running statistics in train mode.
        torch_gan.load_ganjax_variables(G, state.g_params, state.g_state.get('batch_stats'))
        torch_gan.load_ganjax_variables(D, state.d_params, state.d_state.get('batch_stats'))
        g_ref, d_ref = refs[train]
        with torch.no_grad():
            g_out = G.train(train)(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy()
            d_out = D.train(train)(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        for ref, out in ((g_ref, g_out), (d_ref, d_out)):
            scale = max(1.0, float(np.abs(ref).max()))
            np.testing.assert_allclose(out, ref, rtol=0, atol=5e-5 * scale)


def test_space_to_depth_stage_is_padded_strided_conv():
    """ganjax's D stage (space-to-depth patches + Dense) == F.pad(2, 0) + 4x4 stride-2 conv."""
    rng = np.random.default_rng(1)
    cin, cout = 3, 5
    x = rng.normal(size=(2, 8, 12, cin)).astype(np.float32)
    kernel = rng.normal(size=(16 * cin, cout)).astype(np.float32)
    bias = rng.normal(size=(cout,)).astype(np.float32)
    _, prepare = DOWNSAMPLE['space_to_depth'](2)
    ref = np.asarray(prepare(jnp.asarray(x)) @ kernel + bias)
    conv = torch_gan._tag(torch.nn.Conv2d(cin, cout, 4, stride=2), 'dense_s2d')
    torch_gan.load_ganjax_variables(torch.nn.ModuleDict({'conv0': conv}),
                                    {'conv0': {'kernel': kernel, 'bias': bias}})
    with torch.no_grad():
        xt = torch.nn.functional.pad(torch.from_numpy(x).permute(0, 3, 1, 2), (2, 0, 2, 0))
        out = conv(xt).permute(0, 2, 3, 1).numpy()
    assert out.shape == ref.shape == (2, 4, 6, cout)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


@pytest.mark.skipif(not os.environ.get('GANJAX_TEST_TORCH_COMPILE'),
                    reason='torch.compile takes minutes on a small CPU; set '
                           'GANJAX_TEST_TORCH_COMPILE=1')
def test_compiled_step_runs():
    result = torch_gan.measure('dcgan28', batch_size=4, steps=1, warmup=1, mode='compile')
    assert np.isfinite(result['final_d_loss']) and np.isfinite(result['final_g_loss'])
    assert result['dynamo_graphs'] > 0
    assert result['dynamo_graphs_compiled_while_timing'] == 0
