"""Feature extractors for the metrics: a classifier trained on the run's own data, or raw vectors.

"Classifier FID": `train_classifier` fits a small network to a labelled dataset's training split
and reports its accuracy on the held-out split; its penultimate layer then maps examples to the
features of FID, KID and precision/recall. Such a distance is comparable between runs on the same
data and the same feature file, never with Inception FID or with another dataset's numbers.
For vectors (tables, 2D mixtures) the raw values are the features.

Every feature function takes examples in the model's range, as a generator makes them: real data
is first mapped there by its source's `Scaling.to_model` (the classifier is trained that way).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import data
from ganjax.errors import ConfigError, DataError

#: Width of the classifier's penultimate layer: the feature dimension.
FEATURE_DIM = 128


class Classifier(nn.Module):
    """A small classifier whose penultimate activations are the features.

    Images / sequences ``[*spatial, C]``: two [3x3 conv, ReLU, 2x average pool] stages of 32 and 64
    channels (the pooling is skipped on axes too small), Dense(FEATURE_DIM), ReLU, Dense(classes).
    Vectors: Dense(256), ReLU, Dense(FEATURE_DIM), ReLU, Dense(classes).

    Attributes:
      num_classes: number of classes.
    """

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, features_only: bool = False) -> jax.Array:
        """Args: x [B, *data_shape] in the model range ([-1, 1] for images).
        Returns: logits [B, classes], or features [B, FEATURE_DIM] when features_only."""
        if x.ndim >= 3:
            for width in (32, 64):
                x = nn.relu(nn.Conv(width, (3,) * (x.ndim - 2), padding='SAME')(x))
                if min(x.shape[1:-1]) >= 4:
                    x = nn.avg_pool(x, (2,) * (x.ndim - 2), (2,) * (x.ndim - 2))
        else:
            x = nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1)))
        h = nn.relu(nn.Dense(FEATURE_DIM, name='features')(x.reshape(x.shape[0], -1)))
        if features_only:
            return h
        return nn.Dense(self.num_classes, name='logits')(h)


def default_features_dir(data_config: Any) -> str:
    """Where a dataset's feature classifier goes by default: features/<dataset>.

    The folder names the data itself, not only its loader: features/tfds_cifar10, not
    features/tfds, so that two tfds datasets (or two image folders) never share a classifier.

    Args:
      data_config: the `data` section of a config.

    Returns:
      A path relative to the working directory.
    """
    name = data_config.name
    if name == 'tfds' and data_config.tfds_name:
        name = f'tfds_{data_config.tfds_name}'
    elif data_config.path:
        name = f'{name}_{os.path.splitext(os.path.basename(os.path.normpath(data_config.path)))[0]}'
    return os.path.join('features', name.replace('/', '_'))


def _all(source) -> tuple[np.ndarray, np.ndarray]:
    batch = source.get_batch(np.arange(len(source)))
    return batch['x'], batch['label']


def train_classifier(data_config: Any, out_dir: str, epochs: int = 20, batch_size: int = 128,
                     learning_rate: float = 1e-3, seed: int = 0,
                     log: Callable[[str], None] = print) -> dict:
    """Trains the feature classifier on a dataset's train split and saves it to `out_dir`.

    Args:
      data_config: the `data` section of a config (dataset name and options).
      out_dir: folder for `classifier.msgpack` and `classifier.json`.
      epochs: passes over the training split.
      batch_size: examples per update.
      learning_rate: Adam's step size.
      seed: initialisation and shuffling.
      log: where progress lines go.

    Returns:
      The metadata written to classifier.json (dataset, data_shape, classes, accuracy, and the
      data's scaling, which the classifier's inputs must have been through).

    Raises:
      DataError: for a dataset without labels.
    """
    train, held_out = data.build_source(data_config, 'train'), data.build_source(data_config,
                                                                                 'eval')
    if train.num_classes < 2:
        raise DataError(f'{train.description}: the feature classifier needs class labels; for '
                        'unlabelled vectors use the raw features')
    x_tr, y_tr = _all(train)
    x_ev, y_ev = _all(held_out)
    # Stored values travel to the device (uint8 images: a quarter of float32's bytes) and are
    # scaled there, inside the compiled functions.
    to_model = train.scaling.to_model
    model = Classifier(train.num_classes)
    params = model.init(jax.random.PRNGKey(seed), to_model(jnp.asarray(x_tr[:2])))['params']
    steps = len(x_tr) // batch_size
    # Cosine decay to 0: the last epochs refine instead of bouncing around (about +0.5% held-out
    # accuracy on the embedded digits).
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, epochs * steps)))
    opt_state = tx.init(params)

    @jax.jit
    def update(params, opt_state, x, y):
        def loss_fn(p):
            logits = model.apply({'params': p}, to_model(x))
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def predict(params, x):
        return jnp.argmax(model.apply({'params': params}, to_model(x)), axis=-1)

    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x_tr))
        losses = []
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            params, opt_state, loss = update(params, opt_state, x_tr[idx], y_tr[idx])
            losses.append(loss)
        log(f'epoch {epoch + 1}/{epochs}: loss {float(np.mean(jax.device_get(losses))):.4f}')
    correct = sum(int(np.sum(np.asarray(predict(params, x_ev[i:i + 512])) == y_ev[i:i + 512]))
                  for i in range(0, len(x_ev), 512))
    accuracy = correct / len(x_ev)
    info = {'dataset': train.description, 'data_shape': list(train.data_shape),
            'num_classes': int(train.num_classes), 'held_out_accuracy': accuracy,
            'held_out_examples': len(x_ev), 'feature_dim': FEATURE_DIM, 'epochs': epochs,
            'scaling': train.scaling.to_json()}
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, 'classifier.msgpack.tmp')
    with open(tmp, 'wb') as f:
        f.write(flax.serialization.to_bytes(params))
    os.replace(tmp, os.path.join(out_dir, 'classifier.msgpack'))
    with open(os.path.join(out_dir, 'classifier.json'), 'w', encoding='utf-8') as f:
        json.dump(info, f, indent=2)
    log(f'held-out accuracy {accuracy:.4f} on {len(x_ev)} examples; saved to {out_dir}')
    return info


def load_classifier(out_dir: str) -> tuple[Callable, Callable, dict]:
    """Loads a classifier saved by `train_classifier`.

    Args:
      out_dir: the folder given to `train_classifier`.

    Returns:
      (features(x) -> [B, FEATURE_DIM], logits(x) -> [B, classes], metadata); both take x
      [B, *data_shape] in the model's range (generator output, or real data through its
      `Scaling.to_model`) and are pure functions closing over the weights.

    Raises:
      ConfigError: the folder holds no classifier (the message says how to make one).
    """
    weights = os.path.join(out_dir, 'classifier.msgpack')
    meta = os.path.join(out_dir, 'classifier.json')
    if not (os.path.exists(weights) and os.path.exists(meta)):
        raise ConfigError(f'no feature classifier in {out_dir} (classifier.msgpack and '
                          'classifier.json); make one with `ganjax train-features --dataset NAME '
                          f'--out {out_dir}`')
    with open(meta, encoding='utf-8') as f:
        info = json.load(f)
    model = Classifier(int(info['num_classes']))
    template = model.init(jax.random.PRNGKey(0),
                          jnp.zeros((1, *info['data_shape']), jnp.float32))['params']
    with open(weights, 'rb') as f:
        params = flax.serialization.from_bytes(template, f.read())

    def features(x: jax.Array) -> jax.Array:
        return model.apply({'params': params}, x, features_only=True)

    def logits(x: jax.Array) -> jax.Array:
        return model.apply({'params': params}, x)

    return features, logits, info


def load_classifier_features(out_dir: str) -> tuple[Callable[[jax.Array], jax.Array], dict]:
    """The feature function and metadata of `load_classifier` (see there)."""
    features, _, info = load_classifier(out_dir)
    return features, info


def raw_features(x: jax.Array) -> jax.Array:
    """The examples themselves (in the model's range), flattened to float32 vectors: the features
    for tables and 2D data."""
    return x.astype(jnp.float32).reshape(x.shape[0], -1)
