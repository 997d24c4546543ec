"""DCGAN generator / discriminator (Radford et al. 2016, arXiv:1511.06434), for any spatial rank.

Works on images ``[H, W, C]`` and 1D sequences ``[L, C]`` (and in principle volumes), with any
channel count. Spatial sizes are handled by :func:`dcgan_plan`: 28 -> 7x7 base and 2 x2 stages,
32 -> 4x4 and 3 stages, 64 -> 4x4 and 4 stages.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError, lookup
from ganjax.models import layers

Array = jax.Array

#: DCGAN's weight init, N(0, 0.02) (Radford et al. 2016, section 4).
DCGAN_INIT = nn.initializers.normal(0.02)
#: The smallest base grid side the halving plan may reach.
MIN_BASE = 4


def dcgan_plan(spatial: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """Chooses DCGAN's base grid and number of x2 stages for the spatial shape ``spatial``.

    Each axis may be halved while it is even and its half is at least :data:`MIN_BASE`; all axes
    share the smallest such count.

    Args:
      spatial: spatial sizes of one example, e.g. ``(28, 28)`` or ``(64,)``.

    Returns:
      ``(base_shape, num_stages)`` with ``base_shape[i] * 2**num_stages == spatial[i]``.

    Raises:
      ConfigError: no spatial axes, or a size that cannot be halved even once.
    """
    spatial = tuple(int(s) for s in spatial)
    if not spatial:
        raise ConfigError('DCGAN needs data with spatial axes ([length, channels] or '
                          '[height, width, channels]); got a plain vector. Use arch="mlp" for '
                          'vectors.')
    counts = []
    for s in spatial:
        n = 0
        while s % 2 == 0 and s // 2 >= MIN_BASE:
            s //= 2
            n += 1
        counts.append(n)
    n = min(counts)
    if n == 0:
        raise ConfigError(f'DCGAN cannot generate spatial shape {spatial}: every spatial size must '
                          f'be even with half >= {MIN_BASE} (e.g. 8, 28, 32, 64, 100) so that at '
                          'least one x2 upsampling stage fits')
    return tuple(s >> n for s in spatial), n


def _multiplier(k: int, max_multiplier: int) -> int:
    return min(2 ** k, max_multiplier)


class DCGANGenerator(nn.Module):
    """Dense(z) -> base grid -> ``n - 1`` x [upsample x2, norm, ReLU] -> upsample x2 to C -> tanh.

    As in the DCGAN paper's generator (and PyTorch's DCGAN example): the last of the ``n``
    upsampling layers produces the image itself, without normalization. Channels halve at every
    stage: ``features * min(2**(n - 1 - i), max_multiplier)`` after stage ``i`` (so the stage before
    the output has ``features`` channels), e.g. 512-256-128-64-3 for 64x64 images and
    ``features=64``.

    Attributes:
      data_shape: ``(*spatial, channels)`` of one example.
      latent_dim: size of z (checked at call time).
      features: base width (DCGAN's ngf).
      max_multiplier: cap on the channel multiplier of the low-resolution stages.
      upsample: key of :data:`ganjax.models.layers.UPSAMPLE`.
      upsample_kernel_size: window of the upsampling layers (None: the mode's default).
      norm: 'batch' | 'layer' | 'none' after the projection and every hidden upsampling stage.
      spectral_norm: spectrally normalize every Dense / conv.
      output_activation: 'tanh' | 'none'.
      dtype: computation dtype (None: inferred).
      param_dtype: parameter dtype.
      kernel_init: initializer of every kernel.
      num_classes: > 0 makes G class-conditional, reading the label as `conditioning` says.
      conditioning: 'norm' (class-conditional gain and bias in every normalization layer),
        'concat' (one-hot label appended to z) or 'both'; see
        :data:`ganjax.models.layers.G_CONDITIONING`.
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    data_shape: tuple[int, ...]
    latent_dim: int = 100
    features: int = 64
    max_multiplier: int = 8
    upsample: str = 'conv_d2s'
    upsample_kernel_size: Optional[int] = None
    norm: str = 'batch'
    spectral_norm: bool = False
    output_activation: str = 'tanh'
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: layers.Initializer = DCGAN_INIT
    num_classes: int = 0
    conditioning: str = 'norm'
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, z: Array, y: Optional[Array] = None, *, train: bool) -> Array:
        """Generates examples.

        Args:
          z: latent codes ``[B, latent_dim]``.
          y: int class labels ``[B]`` for a conditional generator (``num_classes > 0``); ignored
            by an unconditional one.
          train: batch statistics (running averages and spectral-norm state updated) when True.

        Returns:
          Float32 examples ``[B, *data_shape]``.
        """
        layers.check_latent(z, self.latent_dim, type(self).__name__)
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        spatial, channels = tuple(self.data_shape[:-1]), self.data_shape[-1]
        base, n = dcgan_plan(spatial)
        sn = dict(spectral_norm=self.spectral_norm, train=train, param_dtype=param_dtype)
        concat, norm_classes = layers.generator_conditioning(self.num_classes, self.conditioning,
                                                              self.norm)
        norm = dict(train=train, dtype=dtype, param_dtype=param_dtype, axis_name=self.axis_name,
                    y=y, num_classes=norm_classes)
        bias = layers.bias_before(self.norm)

        width = self.features * _multiplier(n - 1, self.max_multiplier)
        project = nn.Dense(layers.num_elements(base) * width, use_bias=bias, dtype=dtype,
                           param_dtype=param_dtype, kernel_init=self.kernel_init, name='project')
        x = layers.spectral(project, layers.condition_latent(z, y, concat), **sn)
        x = x.reshape(x.shape[0], *base, width)
        x = nn.relu(layers.normalize(self.norm, x, name='project_norm', **norm))
        for i in range(1, n + 1):
            last = i == n
            features = channels if last else \
                self.features * _multiplier(n - 1 - i, self.max_multiplier)
            up = layers.make_upsample(
                self.upsample, features, kernel_size=self.upsample_kernel_size,
                rank=len(spatial), dtype=dtype, param_dtype=param_dtype,
                spectral_norm=self.spectral_norm, use_bias=last or bias,
                kernel_init=self.kernel_init, name=f'up{i}')
            x = up(x, train)
            if not last:
                x = nn.relu(layers.normalize(self.norm, x, name=f'up{i}_norm', **norm))
        return layers.output_activation(self.output_activation, x.astype(jnp.float32))


def _strided(rank: int):
    def layer(features: int, **kwargs) -> nn.Module:
        return nn.Conv(features, (4,) * rank, strides=(2,) * rank, padding=((1, 1),) * rank,
                       **kwargs)

    return layer, lambda x: x


def _space_to_depth(rank: int):
    # Fold 2x2 blocks into channels, pad one block before, and gather the 2^rank neighbouring
    # blocks of each output position: a Dense layer on these patches sees input pixels
    # 2o-2 .. 2o+1, exactly a 4x4 stride-2 conv padded (2, 0), with the same parameter count and
    # FLOPs. Its gradients are matrix products; a strided conv's weight gradient is a convolution
    # with a huge window that XLA on CPU runs through a slow generic loop (5-15 s per layer for
    # DCGAN-64 at batch 64, where the whole D should take well under a second).
    def prepare(x: Array) -> Array:
        x = layers.space_to_depth(x, 2)
        out = x.shape[1:-1]
        x = jnp.pad(x, [(0, 0)] + [(1, 0)] * rank + [(0, 0)])
        views = [x[(slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, out))]
                 for offset in itertools.product((0, 1), repeat=rank)]
        return jnp.concatenate(views, axis=-1)

    def layer(features: int, **kwargs) -> nn.Module:
        return nn.Dense(features, **kwargs)

    return layer, prepare


#: Discriminator downsampling mode -> (rank -> (layer factory, input transform)).
DOWNSAMPLE = {'space_to_depth': _space_to_depth, 'strided': _strided}


class DCGANDiscriminator(nn.Module):
    """``n`` x [conv 4x4 stride 2, norm (not on the first), LeakyReLU(0.2)] -> Dense(1).

    Stage ``i`` (from 0) has ``features * min(2**i, max_multiplier)`` channels; ``n`` is the number
    of stages of the matching generator (:func:`dcgan_plan`), so D ends on the same base grid.

    Attributes:
      features: base width (DCGAN's ndf).
      max_multiplier: cap on the channel multiplier.
      num_stages: number of strided convs (None: ``dcgan_plan`` of the input's spatial shape).
      downsample: how each stage halves the resolution (a key of ``DOWNSAMPLE``):
        'space_to_depth' (default) folds 2x2 blocks into channels and applies a 2x2 stride-1 conv;
        'strided' is the paper's 4x4 stride-2 conv.
      norm: 'batch' | 'layer' | 'none' (WGAN-GP wants 'layer' or 'none').
      spectral_norm: spectrally normalize every conv / Dense.
      dtype: computation dtype (None: inferred); the logit layer runs in float32.
      param_dtype: parameter dtype.
      kernel_init: initializer of every kernel.
      num_classes: K, the classes of the 'projection', 'acgan' and 'kplus1' heads.
      head: the output layer, one of :data:`ganjax.models.layers.D_HEADS`
        (:func:`ganjax.models.layers.logit_head`).
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    features: int = 64
    max_multiplier: int = 8
    num_stages: Optional[int] = None
    downsample: str = 'space_to_depth'
    norm: str = 'batch'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: layers.Initializer = DCGAN_INIT
    num_classes: int = 0
    head: str = 'logit'
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
        """Scores examples.

        Args:
          x: examples ``[B, *spatial, channels]``.
          y: int class labels ``[B]``, read by the 'projection' head only.
          train: update normalization / spectral-norm state.

        Returns:
          ``{'logit': [B], 'features': [B, F], 'class_logits': [B, K] (class heads)}``, float32
          (:func:`ganjax.models.layers.logit_head`).
        """
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        spatial = x.shape[1:-1]
        n = dcgan_plan(spatial)[1] if self.num_stages is None else self.num_stages
        if any(s % 2 ** n for s in spatial):
            raise ConfigError(f'DCGANDiscriminator with {n} stride-2 stages needs spatial sizes '
                              f'divisible by {2 ** n}, got input shape {x.shape}')
        if dtype is not None:
            x = x.astype(dtype)
        rank = len(spatial)
        make_layer, prepare = lookup(DOWNSAMPLE, self.downsample, 'model.downsample')(rank)
        for i in range(n):
            conv = make_layer(self.features * _multiplier(i, self.max_multiplier),
                              use_bias=i == 0 or layers.bias_before(self.norm), dtype=dtype,
                              param_dtype=param_dtype, kernel_init=self.kernel_init,
                              name=f'conv{i}')
            x = prepare(x)
            x = layers.spectral(conv, x, spectral_norm=self.spectral_norm, train=train,
                                param_dtype=param_dtype)
            if i > 0:
                x = layers.normalize(self.norm, x, train=train, name=f'norm{i}', dtype=dtype,
                                     param_dtype=param_dtype, axis_name=self.axis_name)
            x = nn.leaky_relu(x, 0.2)
        return layers.logit_head(x, self.spectral_norm, train, param_dtype, y, self.num_classes,
                                 self.head)
