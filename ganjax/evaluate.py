"""`ganjax eval`: sample quality of a run's EMA generator against the held-out split, beside the
real-vs-real floor (training examples against the same held-out examples).

Features: a run on images needs the classifier of `ganjax train-features` ("classifier FID");
vector data (tables, 2D mixtures) is compared on its raw values. Feature statistics for the
Fréchet distance are accumulated inside the compiled generate-and-extract call.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import jax
import numpy as np

from ganjax import data, metrics
from ganjax import train as train_lib
from ganjax.errors import ConfigError
from ganjax.metrics import features as features_lib
from ganjax.train_step import make_generate_fn, sample_latent

_EVAL_NOISE_SALT = 0xE7A1


def feature_function(config, data_shape, features_dir: str = ''):
    """The feature map for a run's data: the trained classifier for images, raw values otherwise.

    Returns:
      (features(x) -> [B, d], description).
    """
    if len(data_shape) <= 1:
        return features_lib.raw_features, 'raw values'
    folder = features_dir or os.path.join('features', config.data.name)
    fn, info = features_lib.load_classifier_features(folder)
    if tuple(info['data_shape']) != tuple(data_shape):
        raise ConfigError(f'the classifier in {folder} was trained on data of shape '
                          f'{tuple(info["data_shape"])}, the run has {tuple(data_shape)}')
    return fn, f'classifier features ({folder}, held-out accuracy ' \
                f'{info["held_out_accuracy"]:.4f})'


def _feature_sets(fn: Callable, batches) -> tuple[np.ndarray, metrics.FeatureStats]:
    @jax.jit
    def add(stats, x):
        f = fn(x)
        return metrics.accumulate(stats, f), f

    stats, parts = None, []
    for x in batches:
        if stats is None:
            stats = metrics.FeatureStats.empty(int(np.prod(jax.eval_shape(fn, x).shape[1:])))
        stats, f = add(stats, x)
        parts.append(np.asarray(f))
    return np.concatenate(parts), stats


def _all_metrics(real: tuple, other: tuple, n: int) -> dict[str, float]:
    (rf, rs), (of, os_) = real, other
    out = {'fid': metrics.frechet_distance_from_stats(rs, os_)}
    # Subsets of half the samples, so that they differ and the std means something.
    out.update(metrics.kid(rf, of, num_subsets=50, subset_size=min(1000, max(2, n // 2))))
    out.update(metrics.precision_recall(rf, of, k=3))
    out.update(metrics.density_coverage(rf, of, k=5))
    return out


def evaluate(workdir: str, num: int = 5000, features_dir: str = '', step: int | None = None,
             batch_size: int = 250) -> dict:
    """Evaluates a run's EMA generator; writes WORKDIR/eval/step_<step>.json.

    Args:
      workdir: the run's folder.
      num: samples (capped at the held-out split's size, so both sides have the same count).
      features_dir: folder of the feature classifier (default features/<data.name>).
      step: checkpoint step (latest if None).
      batch_size: samples per compiled call.

    Returns:
      {'step', 'num', 'features', 'generator': {...}, 'real_vs_real': {...}}.
    """
    config, gan, state = train_lib.load_run(workdir, step)
    held_out = data.build_source(config.data, 'eval')
    train = data.build_source(config.data, 'train')
    n = min(num, len(held_out), len(train))
    if n < 10:
        raise ConfigError(f'--num {num}: at least 10 samples are needed (held-out split: '
                          f'{len(held_out)})')
    fn, described = feature_function(config, gan.data_shape, features_dir)
    generate = make_generate_fn(gan)
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), _EVAL_NOISE_SALT)

    def fake_batches():
        for i in range(0, n, batch_size):
            z = sample_latent(jax.random.fold_in(rng, i), min(batch_size, n - i), gan.latent_dim)
            yield generate(state.ema_params, state.g_state, z)

    def real_batches(source):
        # A seeded random subset: sources may be stored in class order.
        order = np.sort(np.random.default_rng(config.seed).permutation(len(source))[:n])
        for i in range(0, n, batch_size):
            yield source.get_batch(order[i:i + batch_size])['x']

    reference = _feature_sets(fn, real_batches(held_out))
    result = {
        'step': int(state.step), 'num': n, 'features': described,
        'generator': _all_metrics(reference, _feature_sets(fn, fake_batches()), n),
        'real_vs_real': _all_metrics(reference, _feature_sets(fn, real_batches(train)), n),
    }
    out_dir = os.path.join(workdir, 'eval')
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f'step_{result["step"]:07d}.json')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    os.replace(path + '.tmp', path)
    result['path'] = path
    return result


def format_table(result: dict) -> str:
    """The metrics as a text table: generator beside the real-vs-real floor."""
    lines = [f"step {result['step']}, {result['num']} samples vs held-out, {result['features']}",
             f"{'metric':12s} {'generator':>12s} {'real vs real':>14s}"]
    for key in result['generator']:
        lines.append(f"{key:12s} {result['generator'][key]:12.4f} "
                     f"{result['real_vs_real'][key]:14.4f}")
    return '\n'.join(lines)
