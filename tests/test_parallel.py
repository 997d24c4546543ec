"""Tests of ganjax.parallel on 8 simulated CPU devices: every path equals the one-device step.

The reference is the plain `jax.jit` of the pure step on one device. Each parallel path runs the
same step on the same state and batch, and every leaf of the new state and every metric must agree
to float32 rounding (relative error < 1e-5): BatchNorm statistics and loss means are over the
global batch on every path, and the latent codes are the same.
"""


import jax
import numpy as np
import pytest

from ganjax import compose, parallel
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state
from util import data_scaling, random_batch, tiny_config, train_steps

RTOL = 1e-5
ATOL = 1e-7 * 4

# (arch, data shape, overrides): BatchNorm in both nets (DCGAN), spectral norm in both (ResNet,
# with BatchNorm in G), and a relativistic loss whose D loss couples the whole batch. The latter
# uses SGD: the logit bias cancels out of relativistic losses, so its gradient is zero plus
# rounding noise, which Adam would normalise into a +-lr step of arbitrary sign.
CASES = {
    'dcgan_bn': ('dcgan', (8, 8, 1), {}),
    'resnet_sn_bn': ('resnet', (8, 8, 3), dict(model__g_spectral_norm=True,
                                               model__d_spectral_norm=True,
                                               model__d_norm='none')),
    'dcgan_relativistic_r1': ('dcgan', (8, 8, 1), dict(loss__name='relativistic_average',
                                                       penalty__name='r1', penalty__weight=1.0,
                                                       train__n_critic=2, optim__name='sgd')),
}
PATHS = {  # over all 8 devices
    'jit': dict(parallel__strategy='jit', parallel__num_devices=0),
    'fsdp': dict(parallel__strategy='jit', parallel__fsdp=4, parallel__fsdp_min_size=0,
                 parallel__num_devices=0),
    'pmap': dict(parallel__strategy='pmap', parallel__num_devices=0),
}


def _config(case, path, **extra):
    arch, shape, overrides = CASES[case]
    config = tiny_config(arch, data__batch_size=16, **overrides, **PATHS[path], **extra)
    return config, shape


def _init(par, config, gan):
    return par.init_state(lambda: create_state(config, gan))


def _run(config, shape, steps=1):
    gan = build_gan(config, shape, scaling=data_scaling(shape))
    par = parallel.Parallel(config)
    state = _init(par, config, gan)
    fn = compose.compile_step(config, gan, par)
    metrics = None
    for i in range(steps):
        batch = random_batch(config, shape, seed=i)
        state, metrics = fn(state, par.put_batch({'x': batch['x']}, batch_axis=1))
    return par, jax.device_get(par.canonical_state(state)), par.host_metrics(metrics)


def _assert_close(actual, expected):
    flat_a = jax.tree_util.tree_leaves_with_path(actual)
    flat_e = jax.tree.leaves(expected)
    assert len(flat_a) == len(flat_e)
    for (path, a), e in zip(flat_a, flat_e):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        assert a.shape == e.shape, jax.tree_util.keystr(path)
        # Relative error of the leaf as a vector (norm-wise). A leaf that is a near-cancelling sum
        # of O(1) terms (e.g. Adam's first moment of D's logit bias, ~3e-3 from terms ~0.5) is
        # held to float32 rounding of its terms instead: ATOL, a few float32 epsilons.
        err = np.linalg.norm(a - e) / max(np.linalg.norm(e), ATOL / RTOL)
        assert err < RTOL, f'{jax.tree_util.keystr(path)}: relative error {err:.2e}'


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('case', sorted(CASES))
def test_step_equals_single_device(case, path):
    config, shape = _config(case, path)
    _, ref_state, ref_metrics = train_steps(config, shape)
    par, state, metrics = _run(config, shape)
    assert par.num_devices == 8
    _assert_close(state, ref_state)
    assert sorted(metrics) == sorted(ref_metrics)
    _assert_close({k: metrics[k] for k in sorted(metrics)},
                  {k: ref_metrics[k] for k in sorted(ref_metrics)})


def test_fsdp_shards_large_leaves():
    config, shape = _config('dcgan_bn', 'fsdp')
    gan = build_gan(config, shape, scaling=data_scaling(shape))
    par = parallel.Parallel(config)
    state = _init(par, config, gan)
    kernel = state.g_params['project']['kernel']
    assert kernel.sharding.spec != jax.sharding.PartitionSpec()
    # Each device holds a quarter of the leaf along the sharded axis.
    shard = kernel.addressable_shards[0].data
    assert shard.size * 4 == kernel.size
    # Adam's moments follow their parameter.
    mu = state.g_opt_state.inner_state[0].mu['project']['kernel']
    assert mu.sharding.spec == kernel.sharding.spec


def test_fsdp_spec_rules():
    assert parallel.fsdp_spec((3, 8), 4, 0) == jax.sharding.PartitionSpec(None, 'fsdp')
    assert parallel.fsdp_spec((16, 8), 4, 0) == jax.sharding.PartitionSpec('fsdp', None)
    assert parallel.fsdp_spec((3, 5), 4, 0) == jax.sharding.PartitionSpec()
    assert parallel.fsdp_spec((16, 8), 4, 1000) == jax.sharding.PartitionSpec()
    assert parallel.fsdp_spec((16, 8), 1, 0) == jax.sharding.PartitionSpec()


@pytest.mark.parametrize('path', ['jit', 'pmap'])
def test_multi_step_call_and_on_device_data_equal_single_steps(path):
    config, shape = _config('dcgan_bn', path, train__n_critic=2)
    gan = build_gan(config, shape, scaling=data_scaling(shape))
    _, ref_state, _ = train_steps(config, shape, steps=3)
    par = parallel.Parallel(config)
    # The three batches as one dataset, addressed by indices on the device.
    batches = [random_batch(config, shape, seed=i)['x'] for i in range(3)]
    data_x = np.concatenate([b.reshape((-1,) + shape) for b in batches])
    indices = np.arange(data_x.shape[0], dtype=np.int32).reshape(3, 2, 16)
    data = par.put_dataset({'x': data_x})
    fn = compose.compile_step(config, gan, par, steps_per_call=3, on_device=True)
    state, metrics = fn(_init(par, config, gan), data, par.put_indices(indices))
    _assert_close(jax.device_get(par.canonical_state(state)), ref_state)
    assert par.host_metrics(metrics)['d_loss'].shape == (3,)
    # The same with host batches stacked on a leading axis.
    stacked = np.stack(batches)
    fn = compose.compile_step(config, gan, par, steps_per_call=3)
    state, _ = fn(_init(par, config, gan), par.put_batch({'x': stacked}, 2))
    _assert_close(jax.device_get(par.canonical_state(state)), ref_state)


@pytest.mark.parametrize('path', sorted(PATHS))
def test_no_recompilation_after_first_step(path):
    config, shape = _config('dcgan_bn', path)
    gan = build_gan(config, shape, scaling=data_scaling(shape))
    par = parallel.Parallel(config)
    state = _init(par, config, gan)
    fn = compose.compile_step(config, gan, par)
    compiles = []
    listener = lambda event, duration, **kw: compiles.append(event) \
        if event == '/jax/core/compile/jaxpr_trace_duration' else None
    batch = random_batch(config, shape)
    state, _ = fn(state, par.put_batch({'x': batch['x']}, 1))
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for i in range(3):
            batch = random_batch(config, shape, seed=i + 1)
            state, metrics = fn(state, par.put_batch({'x': batch['x']}, 1))
            par.host_metrics(metrics)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []


@pytest.mark.parametrize('overrides, message', [
    (dict(data__batch_size=12), 'data.batch_size=12 does not divide over the 8 devices'),
    (dict(parallel__num_devices=16), 'parallel.num_devices=16 but only 8'),
    (dict(parallel__fsdp=3), 'parallel.fsdp=3 does not divide the 8 devices'),
    (dict(parallel__strategy='pmap', parallel__fsdp=2), 'needs parallel.strategy="jit"'),
])
def test_bad_layout_is_one_clear_error(overrides, message):
    config = tiny_config('dcgan', **{'parallel__num_devices': 0, **overrides})
    with pytest.raises(ConfigError, match=message.replace('.', r'\.').replace('(', r'\(')):
        parallel.Parallel(config)


def test_fewer_devices_than_present():
    config = tiny_config('dcgan', data__batch_size=6, parallel__num_devices=3)
    par = parallel.Parallel(config)
    assert par.num_devices == 3 and len(par.devices) == 3
