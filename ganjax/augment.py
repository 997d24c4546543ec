"""Differentiable augmentation of D's input (DiffAugment) and its adaptive probability (ADA).

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
https://arxiv.org/abs/2006.10738) transforms every batch D sees, real and fake, in both the D
and the G update, with transformations that are differentiable in the pixels so that G's
gradient passes through them. D then cannot memorise a small training set, and because fakes are
transformed the same way, G is not pushed to produce transformed images.

StyleGAN2-ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data",
https://arxiv.org/abs/2006.06676) applies each transformation with a probability p per example,
and tunes p during training from the overfitting heuristic r_t = E[sign(D(real))]: raised while
r_t is above a target, lowered while below.

Everything here is a pure function of float NHWC (or NHW) batches in the model's range
([-1, 1] for tanh generators: the magnitudes below are DiffAugment's, chosen for that range)
and a PRNG key; parameters are drawn per example, and the ops are masks, gathers and
broadcasts, so they vectorise under jit, vmap and sharding with no Python loop over examples.

Policies are comma-separated group names (`augment.policy`):
  color        brightness + U(-0.5, 0.5); saturation: the deviation from the per-pixel channel
               mean scaled by U(0, 2); contrast: the deviation from the per-image mean scaled by
               U(0.5, 1.5). Saturation is a no-op on one-channel images (no colour to scale).
  translation  an integer shift of up to 1/8 of the height and width each way, zero padded.
  cutout       a zeroed square of half the image size, centred at a uniform pixel (so it may
               be clipped by the border).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from ganjax.errors import ConfigError, closest_hint

#: Policy group -> its elementary ops, in the order they are applied.
POLICIES: dict[str, tuple[str, ...]] = {
    'color': ('brightness', 'saturation', 'contrast'),
    'translation': ('translation',),
    'cutout': ('cutout',),
}

#: DiffAugment's sizes: the largest shift and the cutout square as fractions of the image size.
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str) -> tuple[str, ...]:
    """The elementary ops of a policy string such as 'color,translation,cutout'.

    Args:
      policy: comma-separated names of `POLICIES` ('' or only spaces = no augmentation).

    Returns:
      The ops in order, e.g. ('brightness', 'saturation', 'contrast', 'translation').

    Raises:
      ConfigError: naming the unknown or repeated group.
    """
    names = [n.strip() for n in policy.split(',') if n.strip()]
    ops = []
    for name in names:
        if name not in POLICIES:
            raise ConfigError(f'augment.policy={policy!r}: unknown augmentation {name!r}; '
                              f'choose from {sorted(POLICIES)}{closest_hint(name, POLICIES)}')
        if names.count(name) > 1:
            raise ConfigError(f'augment.policy={policy!r} names {name!r} twice')
        ops.extend(POLICIES[name])
    return tuple(ops)


def _uniform(key: jax.Array, b: int, lo: float, hi: float) -> jax.Array:
    return jax.random.uniform(key, (b,), jnp.float32, lo, hi)


def _per_example(v: jax.Array, x: jax.Array) -> jax.Array:
    """[B] -> [B, 1, 1, 1], broadcastable against x, in x's dtype."""
    return v.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)


def brightness(x: jax.Array, key: jax.Array) -> jax.Array:
    """Adds one U(-0.5, 0.5) offset per example to every pixel and channel (DiffAugment).

    Args:
      x: float [B, H, W, C].
      key: PRNG key.

    Returns:
      The batch, same shape and dtype.
    """
    return x + _per_example(_uniform(key, x.shape[0], -0.5, 0.5), x)


def saturation(x: jax.Array, key: jax.Array) -> jax.Array:
    """Scales each pixel's deviation from its channel mean by U(0, 2) per example (DiffAugment).

    With one channel the deviation is zero: the batch is returned unchanged.

    Args:
      x: float [B, H, W, C].
      key: PRNG key.

    Returns:
      The batch, same shape and dtype.
    """
    if x.shape[-1] == 1:
        return x
    mean = jnp.mean(x, axis=-1, keepdims=True)
    return (x - mean) * _per_example(_uniform(key, x.shape[0], 0.0, 2.0), x) + mean


def contrast(x: jax.Array, key: jax.Array) -> jax.Array:
    """Scales each image's deviation from its mean (over pixels and channels) by U(0.5, 1.5)
    per example (DiffAugment).

    Args:
      x: float [B, H, W, C].
      key: PRNG key.

    Returns:
      The batch, same shape and dtype.
    """
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * _per_example(_uniform(key, x.shape[0], 0.5, 1.5), x) + mean


def max_shift(size: int) -> int:
    """The largest translation of an image side of `size` pixels: 1/8 of it, rounded half up."""
    return int(size * TRANSLATION_RATIO + 0.5)


def translate(x: jax.Array, shift: jax.Array) -> jax.Array:
    """Moves each image by whole pixels, filling with zeros what comes in from outside.

    out[b, i, j] = x[b, i - shift[b, 0], j - shift[b, 1]] where that is inside the image, else 0:
    a positive shift moves the content down (rows) and right (columns).

    Args:
      x: float [B, H, W, C].
      shift: int [B, 2], rows and columns.

    Returns:
      The batch, same shape and dtype.
    """
    _, h, w, _ = x.shape
    rows = jnp.arange(h)[None, :] - shift[:, :1]  # [B, H]: the source row of each output row
    cols = jnp.arange(w)[None, :] - shift[:, 1:]
    row_ok = (rows >= 0) & (rows < h)
    col_ok = (cols >= 0) & (cols < w)
    # Gathers along one axis at a time (a row gather, then a column gather): B*H*W*C reads each,
    # and the gradient is the matching scatter-add.
    out = jnp.take_along_axis(x, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
    out = jnp.take_along_axis(out, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
    keep = row_ok[:, :, None, None] & col_ok[:, None, :, None]
    return jnp.where(keep, out, jnp.zeros((), x.dtype))


def translation(x: jax.Array, key: jax.Array) -> jax.Array:
    """DiffAugment's translation: a uniform integer shift in [-s, s] per axis and example,
    s = `max_shift` of the side, zero padded (`translate`).

    Args:
      x: float [B, H, W, C].
      key: PRNG key.

    Returns:
      The batch, same shape and dtype.
    """
    b, h, w, _ = x.shape
    sh, sw = max_shift(h), max_shift(w)
    lo = jnp.array([-sh, -sw], jnp.int32)
    hi = jnp.array([sh, sw], jnp.int32) + 1
    return translate(x, jax.random.randint(key, (b, 2), lo, hi, jnp.int32))


def cutout_size(size: int) -> int:
    """The side of the cutout square for an image side of `size` pixels: half, rounded half up."""
    return int(size * CUTOUT_RATIO + 0.5)


def cut(x: jax.Array, center: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Zeroes a rectangle of `size` (rows, columns) per image, its top-left corner at
    center - size // 2 and clipped by the image border.

    Args:
      x: float [B, H, W, C].
      center: int [B, 2], the rectangle's centre pixel (row, column).
      size: (rows, columns) of the rectangle.

    Returns:
      The batch, same shape and dtype.
    """
    _, h, w, _ = x.shape
    top = center - jnp.array([size[0] // 2, size[1] // 2], jnp.int32)
    r, c = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
    in_rows = (r >= top[:, :1]) & (r < top[:, :1] + size[0])
    in_cols = (c >= top[:, 1:]) & (c < top[:, 1:] + size[1])
    hole = in_rows[:, :, None, None] & in_cols[:, None, :, None]
    return jnp.where(hole, jnp.zeros((), x.dtype), x)


def cutout(x: jax.Array, key: jax.Array) -> jax.Array:
    """DiffAugment's cutout: a zeroed square of `cutout_size` of each side, centred at a uniform
    pixel per example (`cut`).

    Args:
      x: float [B, H, W, C].
      key: PRNG key.

    Returns:
      The batch, same shape and dtype.
    """
    b, h, w, _ = x.shape
    center = jax.random.randint(key, (b, 2), 0, jnp.array([h, w], jnp.int32), jnp.int32)
    return cut(x, center, (cutout_size(h), cutout_size(w)))


#: Elementary op name -> (x [B, H, W, C], key) -> augmented x.
OPS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    'brightness': brightness,
    'saturation': saturation,
    'contrast': contrast,
    'translation': translation,
    'cutout': cutout,
}


def augment(x: jax.Array, key: jax.Array, ops: tuple[str, ...],
            p: jax.Array | float | None = None) -> jax.Array:
    """Applies the ops in order, each to each example with probability p.

    At p = 1 (or None) this is DiffAugment; with p < 1 each op is kept or skipped independently
    per example, as StyleGAN2-ADA does with its transformations. Skipped examples pass through
    bit for bit (a select, not a blend), so p = 0 is the identity.

    Args:
      x: float images [B, H, W, C] or [B, H, W], in the model's range.
      key: PRNG key; every op and every example draws its own parameters from it.
      ops: elementary ops (keys of `OPS`, e.g. from `parse_policy`); () = identity.
      p: probability of each op, a scalar (may be traced, e.g. `hparams['augment_p']`);
        None = always.

    Returns:
      The augmented batch, same shape and dtype as x.
    """
    if not ops:
        return x
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]
    if x.ndim != 4:
        raise ConfigError(f'augmentation needs images [batch, height, width(, channels)]; got a '
                          f'batch of shape {x.shape}')
    for name, k in zip(ops, jax.random.split(key, len(ops))):
        k_gate, k_op = jax.random.split(k)
        out = OPS[name](x, k_op)
        if p is not None:
            apply = jax.random.uniform(k_gate, (x.shape[0],)) < p
            out = jnp.where(apply[:, None, None, None], out, x)
        x = out
    return x[..., 0] if squeeze else x


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """The static half of a run's augmentation (the probability lives in `GANState.hparams`).

    Attributes:
      ops: elementary ops from the policy ('' -> () = off).
      ada_target: the target of r_t; 0 = p stays fixed.
      ada_interval: steps between adjustments of p.
      ada_kimg: thousands of real images over which p can go from 0 to 1.
    """

    ops: tuple[str, ...] = ()
    ada_target: float = 0.0
    ada_interval: int = 4
    ada_kimg: float = 500.0

    @property
    def enabled(self) -> bool:
        """Whether D's input is augmented at all."""
        return bool(self.ops)

    @property
    def adaptive(self) -> bool:
        """Whether p is adjusted during training (ADA)."""
        return self.enabled and self.ada_target > 0


def spec_from_config(config: ConfigDict, data_shape: tuple[int, ...]) -> AugmentSpec:
    """Reads `config.augment` and checks that the data can be augmented.

    Args:
      config: the full run config.
      data_shape: the shape of one example.

    Returns:
      The AugmentSpec (disabled for policy '').

    Raises:
      ConfigError: for an unknown policy, or a policy on data that is not an image.
    """
    ops = parse_policy(config.augment.policy)
    if ops and len(data_shape) not in (2, 3):
        raise ConfigError(f'augment.policy={config.augment.policy!r} needs images '
                          f'(height, width[, channels]); this data has examples of shape '
                          f"{tuple(data_shape)}: set augment.policy=''")
    return AugmentSpec(ops=ops, ada_target=float(config.augment.ada_target),
                       ada_interval=int(config.augment.ada_interval),
                       ada_kimg=float(config.augment.ada_kimg))


def initial_hparams(config: ConfigDict, spec: AugmentSpec) -> dict[str, jax.Array]:
    """The entries augmentation adds to `GANState.hparams`: none when it is off.

    Only augmented runs get them, so the state (and the checkpoints) of every other run keeps the
    structure it had before augmentation existed and old runs resume.

    Args:
      config: the run (or population member) config (`augment.p`).
      spec: from `spec_from_config`.

    Returns:
      {'augment_p': p} when augmenting, plus {'ada_rt_sum': 0} (r_t summed over the current
      adjustment interval) with ADA; float32 scalars.
    """
    if not spec.enabled:
        return {}
    out = {'augment_p': jnp.asarray(config.augment.p, jnp.float32)}
    if spec.adaptive:
        out['ada_rt_sum'] = jnp.zeros((), jnp.float32)
    return out


def ada_adjust(p: jax.Array, rt: jax.Array, target: float, images: float | jax.Array,
               ada_kimg: float) -> jax.Array:
    """One ADA adjustment: p + sign(r_t - target) * images / (1000 * ada_kimg), within [0, 1].

    Args:
      p: the current probability.
      rt: r_t = E[sign(D(real))] over the images since the last adjustment.
      target: the r_t at which p holds still (0.6 in the paper).
      images: real images shown since the last adjustment.
      ada_kimg: thousands of images for p to go from 0 to 1 (500 in the paper).

    Returns:
      The new p, float32.
    """
    step = jnp.sign(rt - target) * (images / (1000.0 * ada_kimg))
    return jnp.clip(p + step, 0.0, 1.0).astype(jnp.float32)


def ada_update(spec: AugmentSpec, hparams: dict[str, jax.Array], rt: jax.Array,
               step: jax.Array, images_per_step: int) -> dict[str, jax.Array]:
    """Accumulates this step's r_t and, every `ada_interval` steps, adjusts p.

    Args:
      spec: an adaptive AugmentSpec.
      hparams: the state's hyperparameters before this step ('augment_p', 'ada_rt_sum').
      rt: this step's r_t (mean sign of D's logits on its augmented real batches).
      step: the step's index (`state.step`, before the increment).
      images_per_step: real images D sees per step (global batch x n_critic).

    Returns:
      The hyperparameters with 'augment_p' and 'ada_rt_sum' updated (a new dict).
    """
    total = hparams['ada_rt_sum'] + rt
    due = (step + 1) % spec.ada_interval == 0
    new_p = ada_adjust(hparams['augment_p'], total / spec.ada_interval, spec.ada_target,
                       float(images_per_step * spec.ada_interval), spec.ada_kimg)
    return {**hparams, 'augment_p': jnp.where(due, new_p, hparams['augment_p']),
            'ada_rt_sum': jnp.where(due, 0.0, total).astype(jnp.float32)}
