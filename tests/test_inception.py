"""Tests of the FID Inception: input handling, weight files, and equality with PyTorch's network.

The network runs at input_size 75 (its smallest) and batch 2 to keep compilation and runs short;
the architecture is the same at 299.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from ganjax.errors import ConfigError, DataError
from ganjax.metrics import convert_inception, inception

SIZE = 75


def _random_variables(seed: int = 0) -> dict:
    """Variables of the right shapes, scaled so that activations stay O(1) through the network,
    with batch-norm statistics away from (0, 1)."""
    rng = np.random.default_rng(seed)
    flat = {}
    for key, shape in inception._expected_shapes().items():
        if key.endswith('kernel'):
            a = rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        elif key.endswith('var'):
            a = rng.uniform(0.5, 2.0, shape)
        elif key.endswith('scale'):
            a = rng.uniform(0.5, 1.5, shape)
        else:
            a = rng.normal(size=shape) * 0.1
        flat[key] = a.astype(np.float32)
    return traverse_util.unflatten_dict(flat, sep='/')


@pytest.fixture(scope='module')
def variables():
    return _random_variables()


@pytest.fixture(scope='module')
def apply_fn():
    model = inception.InceptionV3(input_size=SIZE)
    # Variables as arguments, not constants: one small program per input signature.
    return jax.jit(model.apply)


def _images(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_shapes_and_input_ranges(variables, apply_fn):
    x = _images(1, (2, 40, 48, 3))
    features, logits = apply_fn(variables, x)
    assert features.shape == (2, inception.FEATURE_DIM) and features.dtype == jnp.float32
    assert logits.shape == (2, inception.NUM_LOGITS) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(features)) and float(jnp.std(features)) > 0
    # The same image as floats in the model range.
    features_f, logits_f = apply_fn(variables, x.astype(np.float32) * (2 / 255) - 1)
    np.testing.assert_allclose(features_f, features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits_f, logits, rtol=1e-5, atol=1e-5)


def test_grayscale_is_repeated(variables, apply_fn):
    grey = _images(2, (2, 40, 48, 1))
    np.testing.assert_allclose(apply_fn(variables, grey)[0],
                               apply_fn(variables, np.repeat(grey, 3, axis=-1))[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shape', [(2, 40, 40, 4), (2, 40, 40, 2), (40, 40, 3)])
def test_bad_shapes_raise(variables, shape):
    model = inception.InceptionV3(input_size=SIZE)
    with pytest.raises(DataError, match='C = 1 or 3'):
        jax.eval_shape(model.apply, variables, jnp.zeros(shape, jnp.uint8))
    with pytest.raises(ValueError):  # DataError is a ValueError
        inception.prepare_images(jnp.zeros(shape, jnp.uint8), SIZE)


def test_too_small_input_size_raises(variables):
    with pytest.raises(ValueError, match='at least 75'):
        jax.eval_shape(inception.InceptionV3(input_size=64).apply, variables,
                       jnp.zeros((1, 64, 64, 3)))


def test_resize_matches_torch():
    torch = pytest.importorskip('torch')
    rng = np.random.default_rng(3)
    for h, w, size in [(100, 100, 75), (32, 48, 75), (75, 75, 75), (299, 150, 299), (7, 300, 80)]:
        x = rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
        ours = np.asarray(inception.prepare_images(jnp.asarray(x), size))
        ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2),
                                              size=(size, size), mode='bilinear',
                                              align_corners=False).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-6, err_msg=f'{h}x{w} -> {size}')


def test_weights_round_trip(variables, tmp_path):
    path = str(tmp_path / 'w.npz')
    inception.save_weights(variables, path)
    assert not os.path.exists(path + '.tmp')
    loaded = inception.load_weights(path)
    flat, flat_loaded = (traverse_util.flatten_dict(v, sep='/') for v in (variables, loaded))
    assert flat.keys() == flat_loaded.keys()
    for key, value in flat.items():
        np.testing.assert_array_equal(flat_loaded[key], value, err_msg=key)


def test_bad_weight_files_raise(variables, tmp_path):
    flat = traverse_util.flatten_dict(variables, sep='/')
    missing = {k: v for k, v in flat.items() if k != 'params/Mixed_6c/branch7x7_2/conv/kernel'}
    inception.save_weights(traverse_util.unflatten_dict(missing, sep='/'), str(tmp_path / 'a.npz'))
    with pytest.raises(ConfigError, match='missing: params/Mixed_6c/branch7x7_2/conv/kernel'):
        inception.load_weights(str(tmp_path / 'a.npz'))

    wrong = dict(flat, **{'batch_stats/Mixed_7b/bn_typo/mean': np.zeros(3, np.float32),
                          'params/fc/bias': np.zeros(1000, np.float32)})
    inception.save_weights(traverse_util.unflatten_dict(wrong, sep='/'), str(tmp_path / 'b.npz'))
    with pytest.raises(ConfigError, match=r'params/fc/bias \(1000,\).*Mixed_7b/bn_typo/mean'):
        inception.load_weights(str(tmp_path / 'b.npz'))

    (tmp_path / 'c.npz').write_bytes(b'not a zip')
    with pytest.raises(ConfigError, match='not an Inception weights file'):
        inception.load_weights(str(tmp_path / 'c.npz'))


def test_missing_weights_message(tmp_path, monkeypatch):
    path = str(tmp_path / 'nowhere' / 'inception.npz')
    with pytest.raises(ConfigError) as e:
        inception.load_inception(path)
    message = str(e.value)
    assert path in message and 'convert_inception' in message
    assert inception.PYTORCH_WEIGHTS_URL in message and inception.WEIGHTS_ENV in message
    monkeypatch.setenv(inception.WEIGHTS_ENV, path)
    assert inception.default_weights_path() == path
    with pytest.raises(ConfigError, match=path):
        inception.load_inception()
    monkeypatch.delenv(inception.WEIGHTS_ENV)
    assert inception.default_weights_path().endswith(
        os.path.join('.cache', 'ganjax', 'fid_inception_v3.npz'))


# --- The PyTorch reference -----------------------------------------------------------------------

# Known shapes of pt_inception-2015-12-05-6726825d.pth, written down from pytorch-fid /
# torchvision, independent of this module.
KNOWN_TORCH_SHAPES = {
    'Conv2d_1a_3x3.conv.weight': (32, 3, 3, 3),
    'Conv2d_1a_3x3.bn.running_var': (32,),
    'Conv2d_4a_3x3.conv.weight': (192, 80, 3, 3),
    'Mixed_5b.branch_pool.conv.weight': (32, 192, 1, 1),
    'Mixed_6b.branch7x7_2.conv.weight': (128, 128, 1, 7),
    'Mixed_6e.branch7x7dbl_4.conv.weight': (192, 192, 7, 1),
    'Mixed_7b.branch3x3_2b.conv.weight': (384, 384, 3, 1),
    'Mixed_7c.branch3x3dbl_3a.conv.weight': (384, 384, 1, 3),
    'Mixed_7c.branch_pool.conv.weight': (192, 2048, 1, 1),
    'fc.weight': (1008, 2048),
    'fc.bias': (1008,),
}
# Inception3(num_classes=1008, aux_logits=False): 94 BasicConv2d (5 tensors each) and fc.
NUM_TORCH_KEYS = 94 * 5 + 2


def _minimal_torch_fid_inception(torch):
    """pytorch-fid's FID Inception, written out for when torchvision or pytorch-fid cannot be
    imported: torchvision's Inception3(num_classes=1008, aux_logits=False) with pytorch-fid's
    FIDInceptionA/C/E_1/E_2 blocks, same module names. Checked when written: same state-dict
    keys in the same order, and bit-identical outputs to pytorch-fid 0.3.0 on torchvision 0.28."""
    nn, F = torch.nn, torch.nn.functional

    class Basic(nn.Module):
        def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    def avg(x):
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

    class A(nn.Module):
        def __init__(self, cin, pool_features):
            super().__init__()
            self.branch1x1 = Basic(cin, 64, 1)
            self.branch5x5_1 = Basic(cin, 48, 1)
            self.branch5x5_2 = Basic(48, 64, 5, padding=2)
            self.branch3x3dbl_1 = Basic(cin, 64, 1)
            self.branch3x3dbl_2 = Basic(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = Basic(96, 96, 3, padding=1)
            self.branch_pool = Basic(cin, pool_features, 1)

        def forward(self, x):
            return torch.cat([
                self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(avg(x))], 1)

    class B(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3 = Basic(cin, 384, 3, stride=2)
            self.branch3x3dbl_1 = Basic(cin, 64, 1)
            self.branch3x3dbl_2 = Basic(64, 96, 3, padding=1)
            self.branch3x3dbl_3 = Basic(96, 96, 3, stride=2)

        def forward(self, x):
            return torch.cat([
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, 2)], 1)

    class C(nn.Module):
        def __init__(self, cin, c7):
            super().__init__()
            self.branch1x1 = Basic(cin, 192, 1)
            self.branch7x7_1 = Basic(cin, c7, 1)
            self.branch7x7_2 = Basic(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7_3 = Basic(c7, 192, (7, 1), padding=(3, 0))
            self.branch7x7dbl_1 = Basic(cin, c7, 1)
            self.branch7x7dbl_2 = Basic(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_3 = Basic(c7, c7, (1, 7), padding=(0, 3))
            self.branch7x7dbl_4 = Basic(c7, c7, (7, 1), padding=(3, 0))
            self.branch7x7dbl_5 = Basic(c7, 192, (1, 7), padding=(0, 3))
            self.branch_pool = Basic(cin, 192, 1)

        def forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = x
            for i in range(1, 6):
                bd = getattr(self, f'branch7x7dbl_{i}')(bd)
            return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(avg(x))], 1)

    class D(nn.Module):
        def __init__(self, cin):
            super().__init__()
            self.branch3x3_1 = Basic(cin, 192, 1)
            self.branch3x3_2 = Basic(192, 320, 3, stride=2)
            self.branch7x7x3_1 = Basic(cin, 192, 1)
            self.branch7x7x3_2 = Basic(192, 192, (1, 7), padding=(0, 3))
            self.branch7x7x3_3 = Basic(192, 192, (7, 1), padding=(3, 0))
            self.branch7x7x3_4 = Basic(192, 192, 3, stride=2)

        def forward(self, x):
            b7 = x
            for i in range(1, 5):
                b7 = getattr(self, f'branch7x7x3_{i}')(b7)
            return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)

    class E(nn.Module):
        def __init__(self, cin, max_pool):
            super().__init__()
            self.max_pool = max_pool
            self.branch1x1 = Basic(cin, 320, 1)
            self.branch3x3_1 = Basic(cin, 384, 1)
            self.branch3x3_2a = Basic(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3_2b = Basic(384, 384, (3, 1), padding=(1, 0))
            self.branch3x3dbl_1 = Basic(cin, 448, 1)
            self.branch3x3dbl_2 = Basic(448, 384, 3, padding=1)
            self.branch3x3dbl_3a = Basic(384, 384, (1, 3), padding=(0, 1))
            self.branch3x3dbl_3b = Basic(384, 384, (3, 1), padding=(1, 0))
            self.branch_pool = Basic(cin, 192, 1)

        def forward(self, x):
            b3 = self.branch3x3_1(x)
            bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else avg(x)
            return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                              self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd),
                              self.branch_pool(pooled)], 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.Conv2d_1a_3x3 = Basic(3, 32, 3, stride=2)
            self.Conv2d_2a_3x3 = Basic(32, 32, 3)
            self.Conv2d_2b_3x3 = Basic(32, 64, 3, padding=1)
            self.maxpool1 = nn.MaxPool2d(3, 2)
            self.Conv2d_3b_1x1 = Basic(64, 80, 1)
            self.Conv2d_4a_3x3 = Basic(80, 192, 3)
            self.maxpool2 = nn.MaxPool2d(3, 2)
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
            self.Mixed_6a = B(288)
            self.Mixed_6b, self.Mixed_6c = C(768, 128), C(768, 160)
            self.Mixed_6d, self.Mixed_6e = C(768, 160), C(768, 192)
            self.Mixed_7a = D(768)
            self.Mixed_7b, self.Mixed_7c = E(1280, False), E(2048, True)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(2048, 1008)

        def forward(self, x):
            for layer in list(self.children())[:-1]:
                x = layer(x)
            return self.fc(torch.flatten(x, 1))

    return Net()


def _torch_fid_inception(torch):
    """The reference with random weights: pytorch-fid's own blocks when importable (assembled as
    pytorch_fid.inception.fid_inception_v3 does, without its download), else the minimal copy."""
    try:
        import torchvision
        from pytorch_fid import inception as pfi
    except Exception:  # noqa: BLE001 - also a torchvision built for another torch (RuntimeError)
        return _minimal_torch_fid_inception(torch), 'minimal'
    net = torchvision.models.inception.Inception3(num_classes=1008, aux_logits=False,
                                                  init_weights=False)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net, 'pytorch_fid'


def _randomize(torch, net, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                w = module.weight
                w.copy_(torch.randn(w.shape, generator=gen) * (2.0 / w[0].numel()) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            elif isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
    return net.eval()


def _torch_features(torch, net, images_uint8, size):
    """pytorch-fid's InceptionV3.forward at `size`: [0, 1] input, bilinear resize, 2x - 1."""
    pool3 = []
    hook = net.avgpool.register_forward_hook(lambda m, i, out: pool3.append(out.flatten(1)))
    x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode='bilinear',
                                        align_corners=False)
    with torch.no_grad():
        logits = net(2 * x - 1)
    hook.remove()
    return pool3[0].numpy(), logits.numpy()


def test_convert_known_shapes(variables):
    # The inverse of the conversion on this module's own shapes must give pytorch-fid's names and
    # shapes as known independently.
    state = {}
    for key, value in traverse_util.flatten_dict(variables, sep='/').items():
        name, _ = inception._torch_name(key)
        state[name] = np.zeros(inception._torch_shape(key, value.shape), np.float32)
    assert len(state) == NUM_TORCH_KEYS
    for name, shape in KNOWN_TORCH_SHAPES.items():
        assert state[name].shape == shape, name
    converted = inception.convert_torch_state_dict(dict(state, **{
        'Conv2d_1a_3x3.bn.num_batches_tracked': np.zeros((), np.int64)}))
    assert converted['params']['fc']['kernel'].shape == (2048, 1008)
    assert converted['params']['Mixed_6b']['branch7x7_2']['conv']['kernel'].shape == (1, 7, 128,
                                                                                         128)
    bad = dict(state)
    del bad['Mixed_6b.branch7x7_2.conv.weight']
    bad['AuxLogits.fc.weight'] = np.zeros((1000, 768), np.float32)
    bad['fc.weight'] = np.zeros((1000, 2048), np.float32)
    with pytest.raises(ConfigError) as e:
        inception.convert_torch_state_dict(bad)
    message = str(e.value)
    for part in ('missing: Mixed_6b.branch7x7_2.conv.weight', 'unexpected: AuxLogits.fc.weight',
                 'fc.weight (1000, 2048) (expected (1008, 2048))', 'torchvision'):
        assert part in message


def test_converter_errors(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip('torch')
    pth = str(tmp_path / 'other.pth')
    torch.save({'features.0.weight': torch.zeros(3)}, pth)
    assert convert_inception.main([pth, '--out', str(tmp_path / 'x.npz')]) == 2
    err = capsys.readouterr().err
    assert 'unexpected: features.0.weight' in err and 'Conv2d_1a_3x3.conv.weight' in err
    assert not os.path.exists(tmp_path / 'x.npz')
    assert convert_inception.main([str(tmp_path / 'absent.pth')]) == 2
    monkeypatch.setitem(sys.modules, 'torch', None)  # import torch fails
    assert convert_inception.main([pth]) == 1
    assert 'pip install torch' in capsys.readouterr().err


def test_matches_torch(tmp_path, capsys):
    torch = pytest.importorskip('torch')
    net, kind = _torch_fid_inception(torch)
    net = _randomize(torch, net)
    state = net.state_dict()
    assert len([k for k in state if not k.endswith('num_batches_tracked')]) == NUM_TORCH_KEYS
    for name, shape in KNOWN_TORCH_SHAPES.items():
        assert tuple(state[name].shape) == shape, name
    pth, out = str(tmp_path / 'ref.pth'), str(tmp_path / 'ref.npz')
    torch.save(state, pth)
    assert convert_inception.main([pth, '--out', out]) == 0
    assert out in capsys.readouterr().out
    features_fn, logits_fn, info = inception.load_inception(out, input_size=SIZE)
    assert info['num_params'] == sum(v.numel() for k, v in state.items()
                                     if 'running' not in k and 'num_batches' not in k)
    assert jax.eval_shape(logits_fn, jnp.zeros((2, 32, 32, 1))).shape == (2, 1008)

    def check(name, ours, ref, shape):
        assert float(np.abs(ref).max()) > 0.1, (name, kind)  # not a dead network
        rel = float(np.abs(np.asarray(ours) - ref).max() / np.abs(ref).max())
        print(f'{kind} {shape} {name}: max relative error {rel:.2e}')
        assert rel < 1e-4, (name, shape, kind, rel)

    # The functions as arguments: their weights are then inputs, not constants, of the program.
    # A batch to shrink (PyTorch does not antialias) for both outputs, one to grow for the
    # features only (the logits are one dense layer further): one compilation less.
    shrink, grow = _images(10, (2, 100, 100, 3)), _images(11, (2, 32, 48, 3))
    ref_features, ref_logits = _torch_features(torch, net, shrink, SIZE)
    features, logits = jax.jit(lambda f, g, x: (f(x), g(x)))(features_fn, logits_fn, shrink)
    check('pool3', features, ref_features, shrink.shape)
    check('logits', logits, ref_logits, shrink.shape)
    ref_features, _ = _torch_features(torch, net, grow, SIZE)
    check('pool3', jax.jit(lambda f, x: f(x))(features_fn, grow), ref_features, grow.shape)


def test_evaluator_with_inception_features_of_a_run(tmp_path, monkeypatch, variables):
    # The plumbing of eval.features='inception': weights from a file, features and IS logits
    # through the Evaluator's compiled calls. Size 75 instead of 299 keeps it fast on a CPU.
    from ganjax import data, evaluate
    from ganjax.train_step import build_gan
    from util import tiny_config

    path = str(tmp_path / 'inception.npz')
    inception.save_weights(variables, path)
    load = inception.load_inception
    monkeypatch.setattr(inception, 'load_inception',
                        lambda p, **kw: load(p, **{**kw, 'input_size': SIZE}))
    config = tiny_config('dcgan', data__name='mnist_5k')
    gan = build_gan(config, (28, 28, 1))
    ev = evaluate.Evaluator(config, gan, 20, batch_size=10, features='inception',
                            inception_weights=path)
    assert 'Inception' in ev.map.description and 'is' in ev.metric_names
    assert ev.reference.features.shape == (20, inception.FEATURE_DIM)
    # The reference is the held-out subset's pool3 features, computed directly here.
    held_out = data.build_source(config.data, 'eval')
    order = np.sort(np.random.default_rng(config.seed).permutation(len(held_out))[:20])
    x = held_out.get_batch(order)['x']
    features, _, _ = load(path, input_size=SIZE)
    np.testing.assert_allclose(ev.reference.features, np.asarray(jax.jit(
        lambda f, x: f(x))(features, x)), rtol=1e-4, atol=1e-5)
    values = ev.compare(ev.reference)
    assert values['fid'] < 1e-3 and 1.0 <= values['is'] <= inception.NUM_LOGITS
