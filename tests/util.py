"""Helpers shared by the tests: tiny configs, random batches, a few reference steps."""

import os

import jax
import numpy as np

from ganjax import config as config_lib
from ganjax.data import Scaling
from ganjax.models import TINY_MODEL_OVERRIDES
from ganjax.train_step import build_gan, create_state, make_train_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(arch: str = 'mlp', **overrides):
    """The default config with a tiny model of `arch` and small batches.

    Args:
      arch: a key of ganjax.models.ARCHITECTURES.
      **overrides: dotted keys with '__' for '.', e.g. loss__name='hinge', or top-level keys
        (precision='bf16').

    Returns:
      A ConfigDict that passes validation.
    """
    config = config_lib.default_config()
    config.model.arch = arch
    config.model.update(TINY_MODEL_OVERRIDES[arch])
    config.data.batch_size = 4
    config.data.prefetch = 0
    config.train.num_steps = 4
    config.train.progress = False
    config.train.compilation_cache = False  # conftest already set the tests' cache
    # One device unless a test asks for more (tests/test_parallel.py): conftest simulates 8, and
    # a batch of 4 does not split over them.
    config.parallel.num_devices = 1
    for key, value in overrides.items():
        *section, leaf = key.split('__')
        (config[section[0]] if section else config)[leaf] = value
    config_lib.validate(config)
    return config


def data_scaling(data_shape):
    """The scaling of `random_batch`'s data: 8-bit pixels for images, None for float data."""
    return Scaling.image(8) if len(data_shape) == 3 else None


def random_batch(config, data_shape, seed=0):
    """A batch [n_critic, B, *data_shape]: uint8 for images, float32 otherwise."""
    rng = np.random.default_rng(seed)
    shape = (config.train.n_critic, config.data.batch_size) + tuple(data_shape)
    if len(data_shape) == 3:
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    else:
        x = rng.normal(size=shape).astype(np.float32)
    return {'x': x, 'label': np.zeros(shape[:2], np.int32)}


def train_steps(config, data_shape, steps=1):
    """`steps` single-device compiled steps on `random_batch`es (seeds 0, 1, ...) from a new state.

    Returns:
      (gan, state, metrics of the last step), state and metrics on the host.
    """
    gan = build_gan(config, data_shape, scaling=data_scaling(data_shape))
    state = create_state(config, gan)
    step = jax.jit(make_train_step(config, gan))
    metrics = None
    for i in range(steps):
        state, metrics = step(state, {'x': random_batch(config, data_shape, seed=i)['x']})
    return gan, jax.device_get(state), jax.device_get(metrics)

