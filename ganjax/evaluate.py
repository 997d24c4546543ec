"""Sample quality of a generator against the held-out split: `ganjax eval` and the evaluations
that training runs every `eval.every` steps.

Features (`eval.features`):
  raw         the examples themselves, for vectors (tables, 2D mixtures); the default for them.
  classifier  the penultimate layer of a classifier trained on the run's data by
              `ganjax train-features` ("classifier FID"); the default for images and sequences.
  inception   the standard FID InceptionV3 (pool3, 2048-d) from a local weights file, for RGB or
              grayscale images; only this gives numbers comparable with published FIDs.

Conditional generators (`gan.num_classes` > 0) are measured on a balanced cycle of classes (sample
i is generated for class i mod K) and get, beside the metrics above (ganjax.metrics.conditional):
  cond_acc        share of samples that the data's classifier assigns to their class (only with
                  the classifier features, whose logits are the data's classes)
  real_acc        that classifier's accuracy on the real held-out examples evaluated (the ceiling)
  fid_per_class   mean over classes of fid_class_<k>, the FID of class k's samples against the
                  held-out examples of class k (intra-FID). Each class has about num/K samples a
                  side: mnist_5k's 500 held-out digits (eval.num_samples=2000 is capped there)
                  give about 50, where FID is strongly biased upwards (the real-vs-real column of
                  `ganjax eval` shows the value two real sets of that size get).

An `Evaluator` fixes the held-out reference (features and their statistics, computed once) and the
generator's noise, so successive evaluations of a training run differ only through the generator.
Generation, feature extraction and the FID statistics run in compiled calls that each scan over up
to 50 batches (carrying the statistics), with every batch sharded over the devices when a
`constrain` function is given (the training mesh's).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import data, metrics, run_dir
from ganjax.errors import ConfigError
from ganjax.metrics import domains
from ganjax.metrics import features as features_lib
# Re-exported: `ganjax.evaluate` is where users look for how metrics are compared.
from ganjax.metrics.goals import METRIC_GOALS, is_better  # noqa: F401
from ganjax.train_step import make_generate_fn, sample_latent

_EVAL_NOISE_SALT = 0xE7A1
# Batches per compiled call: 50,000 samples in batches of 250 are 4 calls of a scan over 50
# batches, not 200 dispatches; the features of a call (50 x 250 x 2048 float32 for Inception,
# 100 MB) stay small next to accelerator memory.
_BATCHES_PER_CALL = 50

FEATURES = ('auto', 'raw', 'classifier', 'inception')


class FeatureMap(NamedTuple):
    """A feature extractor: `features(x) -> [B, d]`, optional class `logits(x)` (for the
    Inception Score), a description for reports, and `num_classes`: the number of the data's
    classes that `logits` predicts (0 when its classes are another label set, e.g. ImageNet's);
    conditional accuracy needs it.

    The functions may be `jax.tree_util.Partial`s carrying their weights as pytree leaves (the
    Inception network's 95 MB); the Evaluator passes them into its compiled calls as arguments,
    so the weights are inputs rather than constants folded into every compiled program.
    """
    features: Callable[[jax.Array], jax.Array]
    logits: Callable[[jax.Array], jax.Array] | None
    description: str
    num_classes: int = 0


def feature_map(data_config, data_shape: tuple, kind: str = 'auto', features_dir: str = '',
                inception_weights: str = '', scaling: data.Scaling | None = None) -> FeatureMap:
    """The feature extractor for a run's data.

    Args:
      data_config: the run's `data` section (names the default classifier folder,
        `features.default_features_dir`).
      data_shape: shape of one example.
      kind: one of FEATURES; 'auto' is 'raw' for vectors and 'classifier' otherwise.
      features_dir: classifier folder ('' = the default folder of the data).
      inception_weights: Inception weights file ('' = its default location).
      scaling: the data's scaling; a classifier trained on data of another scaling is refused
        (classifiers saved before scalings were recorded are taken as they are).

    Returns:
      A FeatureMap.

    Raises:
      ConfigError: for an unknown kind, a missing feature file, or features that do not fit the
        data (a classifier trained on other shapes, Inception on non-images).
    """
    if kind not in FEATURES:
        raise ConfigError(f'eval.features={kind!r} is not one of {list(FEATURES)}')
    is_vector = len(data_shape) <= 1
    if kind == 'auto':
        kind = 'raw' if is_vector else 'classifier'
    if kind == 'raw':
        return FeatureMap(features_lib.raw_features, None, 'raw values')
    if kind == 'inception':
        if len(data_shape) != 3 or data_shape[-1] not in (1, 3):
            raise ConfigError(f'Inception features need images [H, W, 1 or 3]; the run has data '
                              f'of shape {tuple(data_shape)} (use eval.features=classifier)')
        from ganjax.metrics import inception  # noqa: PLC0415 (a large module, images only)
        # Full float32 convolutions: GPUs would otherwise use TF32, and FID is compared across
        # machines.
        fn, logits, info = inception.load_inception(inception_weights,
                                                    precision=jax.lax.Precision.HIGHEST)
        return FeatureMap(fn, logits, f"Inception pool3 features ({info['path']})")
    folder = features_dir or features_lib.default_features_dir(data_config)
    fn, logits, info = features_lib.load_classifier(folder)
    if tuple(info['data_shape']) != tuple(data_shape):
        raise ConfigError(f'the classifier in {folder} was trained on data of shape '
                          f'{tuple(info["data_shape"])}, the run has {tuple(data_shape)}')
    if scaling is not None and 'scaling' in info and (
            data.Scaling.from_json(info['scaling']) != scaling):
        raise ConfigError(f'the classifier in {folder} was trained on data with '
                          f'{data.Scaling.from_json(info["scaling"]).describe()}, the run has '
                          f'{scaling.describe()}; train one for this data with '
                          f'`ganjax train-features`')
    return FeatureMap(fn, logits, f'classifier features ({folder}, held-out accuracy '
                                  f'{info["held_out_accuracy"]:.4f})', int(info['num_classes']))


def _flat(x: jax.Array | None) -> jax.Array | None:
    """[k, B, ...] -> [k * B, ...] (None stays None)."""
    return None if x is None else x.reshape((-1,) + x.shape[2:])


def _to_host(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1 and not x.is_fully_addressable:
        from jax.experimental import multihost_utils  # noqa: PLC0415
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


class _FeatureSet(NamedTuple):
    features: np.ndarray
    stats: metrics.FeatureStats
    probs: np.ndarray | None
    samples: np.ndarray | None
    labels: np.ndarray | None = None  # int32 [num]: real classes, or those samples were made for


class Evaluator:
    """Scores generators against a fixed held-out reference.

    Compiled calls are made once and reused, so evaluating during training costs generation and
    feature extraction only.
    """

    def __init__(self, config, gan, num: int, *, features: str = 'auto', features_dir: str = '',
                 inception_weights: str = '', batch_size: int = 250,
                 constrain: Callable[[jax.Array], jax.Array] | None = None,
                 num_devices: int = 1):
        """Builds the feature map and computes the reference's features.

        Args:
          config: the run's config (data, seed).
          gan: the run's GANDef.
          num: samples per side; capped at the held-out split's size.
          features: one of FEATURES.
          features_dir: classifier folder ('' = features/<dataset>, see default_features_dir).
          inception_weights: Inception weights file ('' = default location).
          batch_size: examples per batch (a compiled call scans over up to 50 batches).
          constrain: shards a batch over the devices (inside jit); batches whose size does not
            divide `num_devices` are left unconstrained.
          num_devices: devices that `constrain` spreads a batch over.

        Raises:
          ConfigError: fewer than 10 held-out examples, or a feature problem (see `feature_map`).
        """
        held_out = data.build_source(config.data, 'eval')
        self.num = min(int(num), len(held_out))
        if self.num < 10:
            raise ConfigError(f'evaluation needs at least 10 samples; asked for {num}, held-out '
                              f'split of {config.data.name} has {len(held_out)}')
        self.batch_size = max(1, min(int(batch_size), self.num))
        self.map = feature_map(config.data, gan.data_shape, features, features_dir,
                               inception_weights, scaling=held_out.scaling)
        self.seed = int(config.seed)
        self.latent_dim = gan.latent_dim
        self.num_classes = gan.num_classes
        # Conditional accuracy needs logits over the data's own classes (the run's classifier).
        self._class_logits = bool(self.num_classes) and self.map.num_classes == self.num_classes
        self._constrain = constrain
        self._num_devices = max(1, int(num_devices))
        # Metrics of the data's own kind (mixture modes, per-gene statistics, ...), computed on
        # samples kept in the data's units.
        self.domain = domains.domain_metrics(held_out, config)
        # Real data is scaled into the model's range, where the generator's samples are, inside
        # the compiled call (stored values travel; uint8 images are a quarter of float32's bytes).
        self.scaling = held_out.scaling
        self._generate = make_generate_fn(gan)
        self._fns = tuple(f if f is None or isinstance(f, jax.tree_util.Partial)
                          else jax.tree_util.Partial(f)
                          for f in (self.map.features, self.map.logits))
        self._real_call = jax.jit(self._real_body)
        self._fake_call = jax.jit(self._fake_body, static_argnames='count')
        self.reference = self.real_features(held_out)
        # The classes of a conditional generator's samples: a balanced cycle, or, for a run whose
        # fakes take the data's classes (train.fake_labels='data'), those of the held-out
        # examples evaluated, so both sides have the same class proportions.
        self.fake_classes = np.arange(self.num, dtype=np.int32) % max(self.num_classes, 1)
        if self.num_classes and getattr(gan, 'fake_labels', 'uniform') == 'data':
            labels = self.reference.labels
            known = (labels >= 0) & (labels < self.num_classes)
            self.fake_classes = np.where(known, labels, self.fake_classes).astype(np.int32)
        self.real_acc = (metrics.conditional_accuracy(self.reference.probs, self.reference.labels)
                         if self._class_logits else None)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics that `compare` reports with these features and data."""
        names = ['fid', 'kid', 'kid_std', 'precision', 'recall', 'density', 'coverage']
        if self.map.logits is not None:
            names += ['is', 'is_std']
        if self.domain is not None:
            names += list(self.domain.names(self.num_classes))
        if self._class_logits:
            names += ['cond_acc', 'real_acc']
        if self.num_classes:
            names += ['fid_per_class'] + [f'fid_class_{k}' for k in range(self.num_classes)]
        return tuple(names)

    @staticmethod
    def _extract(fns, stats, x):
        features, logits = fns
        f = features(x)
        probs = None if logits is None else jax.nn.softmax(logits(x).astype(np.float32), axis=-1)
        return metrics.accumulate(stats, f), f, probs

    def _real_body(self, fns, stats, xs):
        # xs [k, B, ...]: k batches in one compiled call, statistics carried through a scan.
        def body(stats, x):
            stats, f, probs = self._extract(fns, stats, self.scaling.to_model(x))
            return stats, (f, probs)
        stats, (f, probs) = jax.lax.scan(body, stats, xs)
        return stats, _flat(f), _flat(probs)

    def _fake_body(self, fns, params, g_state, stats, rng, offsets, count: int):
        # One batch of `count` samples per offset, noise folded from the offset: the samples do
        # not depend on how batches are grouped into calls.
        def body(stats, offset):
            key = jax.random.fold_in(rng, offset)
            z = sample_latent(key, count, self.latent_dim)
            # A conditional generator's sample i is of class fake_classes[i] (a balanced cycle,
            # or the held-out classes), known to the metrics.
            y = None if not self.num_classes else jax.lax.dynamic_slice_in_dim(
                jnp.asarray(self.fake_classes), offset, count)
            if self._constrain is not None and count % self._num_devices == 0:
                z = self._constrain(z)
                y = None if y is None else self._constrain(y)
            x = self._generate(params, g_state, z, y)
            stats, f, probs = self._extract(fns, stats, x)
            return stats, (f, probs, x if self.domain is not None else None)
        stats, (f, probs, x) = jax.lax.scan(body, stats, offsets)
        return stats, _flat(f), _flat(probs), _flat(x)

    def _empty_stats(self, x_shape, dtype) -> metrics.FeatureStats:
        shape = jax.eval_shape(self.map.features, jax.ShapeDtypeStruct(x_shape, dtype)).shape
        return metrics.FeatureStats.empty(int(np.prod(shape[1:])))

    def _calls(self) -> list[tuple[list[int], int]]:
        """The compiled calls that cover `num` samples: (batch start offsets, batch size) each.

        Full batches go `_BATCHES_PER_CALL` to a call; a last partial batch gets its own call.
        """
        b = self.batch_size
        full = list(range(0, self.num - b + 1, b))
        calls = [(full[i:i + _BATCHES_PER_CALL], b)
                 for i in range(0, len(full), _BATCHES_PER_CALL)]
        done = len(full) * b
        if done < self.num:
            calls.append(([done], self.num - done))
        return calls

    @staticmethod
    def _collect(parts) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        feats, probs, samples = zip(*parts)
        return (np.concatenate(feats),
                None if probs[0] is None else np.concatenate(probs),
                None if samples[0] is None else np.concatenate(samples))

    def real_features(self, source) -> _FeatureSet:
        """Features of a seeded random subset of `num` examples of a data source.

        A random subset, not the first `num`: sources may be stored in class order.
        """
        order = np.sort(np.random.default_rng(self.seed).permutation(len(source))[:self.num])
        stats, parts, labels = None, [], []
        for offsets, count in self._calls():
            batch = source.get_batch(order[offsets[0]:offsets[-1] + count])
            x = batch['x']
            labels.append(np.asarray(batch['label'], np.int32))
            if stats is None:
                stats = self._empty_stats((count,) + x.shape[1:], np.float32)
            stats, f, p = self._real_call(self._fns, stats,
                                          x.reshape((len(offsets), count) + x.shape[1:]))
            parts.append((_to_host(f), None if p is None else _to_host(p),
                          x if self.domain is not None else None))
        feats, probs, samples = self._collect(parts)
        return _FeatureSet(feats, stats, probs, samples, np.concatenate(labels))

    def fake_features(self, params, g_state) -> _FeatureSet:
        """Features of `num` samples of the generator (params, g_state), from fixed noise.

        A conditional generator's sample i is of class `fake_classes[i]` (`labels`: a balanced
        cycle, or the held-out classes for train.fake_labels='data'). The samples kept for the
        domain's metrics (`ganjax.metrics.domains`) are in the data's units, like the real ones.
        """
        rng = jax.random.fold_in(jax.random.PRNGKey(self.seed), _EVAL_NOISE_SALT)
        stats, parts = None, []
        for offsets, count in self._calls():
            if stats is None:
                y = (jax.ShapeDtypeStruct((count,), np.int32) if self.num_classes else None)
                x_shape = jax.eval_shape(self._generate, params, g_state, jax.ShapeDtypeStruct(
                    (count, self.latent_dim), np.float32), y)
                stats = self._empty_stats(x_shape.shape, x_shape.dtype)
            stats, f, p, x = self._fake_call(self._fns, params, g_state, stats, rng,
                                             np.asarray(offsets, np.int32), count=count)
            parts.append((_to_host(f), None if p is None else _to_host(p),
                          None if x is None else self.scaling.to_data(_to_host(x))))
        feats, probs, samples = self._collect(parts)
        labels = self.fake_classes.copy() if self.num_classes else None
        return _FeatureSet(feats, stats, probs, samples, labels)

    def compare(self, other: _FeatureSet) -> dict[str, float]:
        """All metrics of a feature set against the held-out reference.

        Returns:
          {name: value} for every name of `metric_names`.
        """
        ref = self.reference
        out = {'fid': metrics.frechet_distance_from_stats(ref.stats, other.stats)}
        # Subsets of half the samples, so that they differ and the std means something.
        out.update(metrics.kid(ref.features, other.features, num_subsets=50,
                               subset_size=min(1000, max(2, self.num // 2))))
        out.update(metrics.precision_recall(ref.features, other.features, k=3))
        out.update(metrics.density_coverage(ref.features, other.features, k=5))
        if other.probs is not None:
            # IS splits must be random subsets; a real subset comes in index order, which for
            # class-sorted data would put one class in each split.
            probs = other.probs[np.random.default_rng(0).permutation(len(other.probs))]
            out.update(metrics.inception_score(probs, splits=min(10, self.num)))
        if self.domain is not None:
            out.update(self.domain(ref.samples, ref.labels, other.samples,
                                   other.labels if self.num_classes else None))
        if self.num_classes:
            out.update(self._conditional_metrics(other))
        return out

    def _conditional_metrics(self, other: _FeatureSet) -> dict[str, float]:
        """cond_acc and real_acc (with the data's classifier), fid_per_class and fid_class_<k>.

        fid_class_<k> is NaN for a class with fewer than 2 examples on a side (a rare class in the
        held-out subset); the mean is over the other classes. Both sides' class counts are fixed
        for an Evaluator (a fixed real subset, a fixed cycle of classes), so the mean is over the
        same classes at every evaluation of a run.
        """
        out = {}
        if self._class_logits:
            out['cond_acc'] = metrics.conditional_accuracy(other.probs, other.labels)
            out['real_acc'] = self.real_acc
        fids = metrics.per_class_fid(self.reference.features, self.reference.labels,
                                     other.features, other.labels, self.num_classes)
        finite = fids[np.isfinite(fids)]
        out['fid_per_class'] = float(np.mean(finite)) if len(finite) else float('nan')
        out.update({f'fid_class_{k}': float(v) for k, v in enumerate(fids)})
        return out

    def generator_metrics(self, params, g_state) -> dict[str, float]:
        """Metrics of a generator against the held-out reference (see `compare`)."""
        return self.compare(self.fake_features(params, g_state))


def check_best_metric(metric: str, evaluator: Evaluator) -> None:
    """Raises ConfigError unless `metric` is one that `evaluator` reports and has a direction."""
    if metric not in METRIC_GOALS or metric not in evaluator.metric_names:
        names = [m for m in evaluator.metric_names if m in METRIC_GOALS]
        raise ConfigError(f'eval.best_metric={metric!r}: with {evaluator.map.description} on this '
                          f'data it must be one of {names}')


def evaluate(workdir: str, num: int = 5000, features_dir: str = '', step: int | None = None,
             batch_size: int = 250, features: str = '', inception_weights: str = '',
             best: bool = False) -> dict[str, Any]:
    """Evaluates a run's EMA generator; writes WORKDIR/eval/step_<step>.json.

    Args:
      workdir: the run's folder.
      num: samples (capped at the held-out and training splits' sizes, so every side has the same
        count).
      features_dir: classifier folder ('' = the run's eval.features_dir or features/<dataset>).
      step: checkpoint step (latest if None).
      batch_size: samples per batch.
      features: one of FEATURES ('' = the run's eval.features).
      inception_weights: Inception weights file ('' = the run's eval.inception_weights or the
        default location).
      best: evaluate the checkpoint kept in WORKDIR/best instead (`eval.best_metric`).

    Returns:
      {'step', 'num', 'features', 'generator': {...}, 'real_vs_real': {...}, 'path'}, and
      'figure' (a PNG beside the JSON) for data whose domain metrics draw one, and what their
      `details` add (expression: 'per_type', each cell type's statistics and marker genes).
    """
    config, gan, state = run_dir.load_run(workdir, step, best=best)
    train = data.build_source(config.data, 'train')
    evaluator = Evaluator(config, gan, min(num, len(train)),
                          features=features or config.eval.features,
                          features_dir=features_dir or config.eval.features_dir,
                          inception_weights=inception_weights or config.eval.inception_weights,
                          batch_size=batch_size)
    fake = evaluator.fake_features(state.ema_params, state.g_state)
    result = {
        'step': int(state.step), 'num': evaluator.num, 'features': evaluator.map.description,
        'generator': evaluator.compare(fake),
        'real_vs_real': evaluator.compare(evaluator.real_features(train)),
    }
    out_dir = os.path.join(workdir, 'eval')
    os.makedirs(out_dir, exist_ok=True)
    name = f'{"best_" if best else ""}step_{result["step"]:07d}.json'
    path = os.path.join(out_dir, name)
    ref = evaluator.reference
    fake_labels = fake.labels if evaluator.num_classes else None
    if hasattr(evaluator.domain, 'details'):
        result.update(evaluator.domain.details(
            ref.samples, ref.labels, fake.samples, fake_labels, run_dir.load_class_names(workdir),
            tuple(getattr(train, 'columns', ()))))
    if hasattr(evaluator.domain, 'figure'):
        result['figure'] = path[:-len('.json')] + '.png'
        evaluator.domain.figure(ref.samples, ref.labels, fake.samples, fake_labels,
                                run_dir.load_class_names(workdir), result['figure'])
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    os.replace(path + '.tmp', path)
    result['path'] = path
    return result


def format_table(result: dict) -> str:
    """The metrics as a text table: generator beside the real-vs-real floor."""
    lines = [f"step {result['step']}, {result['num']} samples vs held-out, {result['features']}",
             f"{'metric':14s} {'generator':>12s} {'real vs real':>14s}"]
    for key in result['generator']:
        lines.append(f"{key:14s} {result['generator'][key]:12.4f} "
                     f"{result['real_vs_real'][key]:14.4f}")
    return '\n'.join(lines)
