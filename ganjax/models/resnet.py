"""ResNet generator / discriminator in the SNGAN style (Miyato et al. 2018, arXiv:1802.05957,
appendix B.4; after Gulrajani et al. 2017), for any spatial rank.

Built for 32x32 images (CIFAR-10): G goes 4x4 -> 8 -> 16 -> 32 in three up-blocks; any spatial size
divisible by 8 works. With ``d_norm='none'`` and ``d_spectral_norm=True`` the discriminator is
SNGAN's.
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError
from ganjax.models import layers

Array = jax.Array

# SNGAN's Chainer code uses Glorot-uniform kernels, scaled by sqrt(2) on the residual path.
RESIDUAL_INIT = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
SHORTCUT_INIT = nn.initializers.glorot_uniform()


def resnet_base_shape(spatial: tuple[int, ...], num_blocks: int) -> tuple[int, ...]:
    """Base grid of a ResNet generator with ``num_blocks`` x2 up-blocks.

    Args:
      spatial: spatial sizes of one example.
      num_blocks: number of x2 up-blocks.

    Returns:
      ``spatial // 2**num_blocks`` per axis.

    Raises:
      ConfigError: no spatial axes, or a size not divisible by ``2**num_blocks``.
    """
    if not spatial:
        raise ConfigError('the ResNet GAN needs data with spatial axes ([height, width, channels] '
                          'or [length, channels]); got a plain vector. Use arch="mlp" for '
                          'vectors.')
    factor = 2 ** num_blocks
    if any(s % factor or s < factor for s in spatial):
        raise ConfigError(f'the ResNet GAN needs spatial sizes divisible by {factor} '
                          f'({num_blocks} x2 up-blocks), got {tuple(spatial)}')
    return tuple(s // factor for s in spatial)


class _Common(nn.Module):
    """Fields shared by the residual blocks (`num_classes` > 0: class-conditional norms)."""

    features: int
    norm: str = 'batch'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    axis_name: Optional[str] = None
    num_classes: int = 0

    def _conv(self, x: Array, train: bool, kernel: int, name: str,
              init: layers.Initializer = RESIDUAL_INIT, features: int | None = None,
              use_bias: bool = True) -> Array:
        conv = nn.Conv(self.features if features is None else features, (kernel,) * (x.ndim - 2),
                       padding='SAME', use_bias=use_bias, dtype=self._dtype,
                       param_dtype=self._param_dtype, kernel_init=init, name=name)
        return layers.spectral(conv, x, spectral_norm=self.spectral_norm, train=train,
                               param_dtype=self._param_dtype)

    def _norm(self, x: Array, train: bool, name: str, y: Optional[Array] = None) -> Array:
        return layers.normalize(self.norm, x, train=train, name=name, dtype=self._dtype,
                                param_dtype=self._param_dtype, axis_name=self.axis_name, y=y,
                                num_classes=self.num_classes)

    @property
    def _dtype(self) -> Any:
        return layers.resolve_dtype(self.dtype)

    @property
    def _param_dtype(self) -> Any:
        return layers.resolve_dtype(self.param_dtype, 'param_dtype')


class GeneratorBlock(_Common):
    """Up-block: norm, ReLU, upsample x2 (+conv), norm, ReLU, conv3x3; shortcut: x2 + conv1x1.

    The shortcut applies its 1x1 conv before the nearest-neighbour x2, which is the same map as
    SNGAN's "upsample, then conv1x1" at a quarter of the cost.

    Attributes:
      upsample: key of :data:`ganjax.models.layers.UPSAMPLE` for the residual path.
    """

    upsample: str = 'conv_d2s'

    @nn.compact
    def __call__(self, x: Array, train: bool, y: Optional[Array] = None) -> Array:
        """Args: x ``[B, *S, C]``; train: mode; y: int labels ``[B]`` (conditional norms).
        Returns ``[B, *(2 S), features]``."""
        # With BatchNorm every bias of a generator block only shifts channels by constants, which
        # travel along the shortcuts until the next BatchNorm removes them: they are left out.
        bias = layers.bias_before(self.norm)
        h = nn.relu(self._norm(x, train, 'norm1', y))
        h = layers.make_upsample(self.upsample, self.features, dtype=self._dtype,
                                 param_dtype=self._param_dtype, spectral_norm=self.spectral_norm,
                                 use_bias=bias, kernel_init=RESIDUAL_INIT, name='up')(h, train)
        h = nn.relu(self._norm(h, train, 'norm2', y))
        h = self._conv(h, train, 3, 'conv2', use_bias=bias)
        s = layers.nearest_upsample(
            self._conv(x, train, 1, 'shortcut', SHORTCUT_INIT, use_bias=bias), 2)
        return h + s


class DiscriminatorBlock(_Common):
    """Down-block: [norm], ReLU, conv3x3, [norm], ReLU, conv3x3, [avg-pool x2];
    shortcut: conv1x1 + [avg-pool x2] when the shape changes, else identity.

    With ``optimized=True`` it is SNGAN's first block, fed the raw input: conv3x3, [norm], ReLU,
    conv3x3, avg-pool; shortcut avg-pool then conv1x1.

    Attributes:
      downsample: halve every spatial axis.
      optimized: SNGAN's "optimized" first block.
    """

    downsample: bool = True
    optimized: bool = False

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        """Args: x ``[B, *S, C]``; train: mode. Returns ``[B, *S', features]``."""
        if self.optimized:
            h = x
        else:
            h = nn.relu(self._norm(x, train, 'norm1'))
        # conv1 feeds norm2, which cancels its bias when it is a BatchNorm.
        h = self._conv(h, train, 3, 'conv1', use_bias=layers.bias_before(self.norm))
        h = self._conv(nn.relu(self._norm(h, train, 'norm2')), train, 3, 'conv2')
        if self.downsample:
            h = layers.avg_pool2(h)
        if self.optimized:
            s = self._conv(layers.avg_pool2(x), train, 1, 'shortcut', SHORTCUT_INIT)
        elif self.downsample or x.shape[-1] != self.features:
            s = self._conv(x, train, 1, 'shortcut', SHORTCUT_INIT)
            if self.downsample:
                s = layers.avg_pool2(s)
        else:
            s = x
        return h + s


class ResNetGenerator(nn.Module):
    """Dense(z) -> base grid x features -> ``num_blocks`` up-blocks -> norm, ReLU, conv3x3 to C
    -> activation.

    Attributes:
      data_shape: ``(*spatial, channels)`` of one example; spatial sizes divisible by
        ``2**num_blocks``.
      latent_dim: size of z (checked at call time).
      features: channels of every block (SNGAN: 256).
      num_blocks: number of x2 up-blocks.
      upsample: key of :data:`ganjax.models.layers.UPSAMPLE`.
      norm: 'batch' | 'layer' | 'none' inside the blocks and before the output conv.
      spectral_norm: spectrally normalize every Dense / conv.
      output_activation: 'tanh' | 'none'.
      dtype: computation dtype (None: inferred).
      param_dtype: parameter dtype.
      num_classes: > 0 makes G class-conditional, reading the label as `conditioning` says.
      conditioning: 'norm' (class-conditional gain and bias in every normalization layer),
        'concat' (one-hot label appended to z) or 'both'; see
        :data:`ganjax.models.layers.G_CONDITIONING`.
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    data_shape: tuple[int, ...]
    latent_dim: int = 128
    features: int = 256
    num_blocks: int = 3
    upsample: str = 'conv_d2s'
    norm: str = 'batch'
    spectral_norm: bool = False
    output_activation: str = 'tanh'
    dtype: Any = None
    param_dtype: Any = jnp.float32
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
        base = resnet_base_shape(spatial, self.num_blocks)
        sn = dict(spectral_norm=self.spectral_norm, train=train, param_dtype=param_dtype)
        project = nn.Dense(layers.num_elements(base) * self.features,
                           use_bias=layers.bias_before(self.norm), dtype=dtype,
                           param_dtype=param_dtype, kernel_init=SHORTCUT_INIT, name='project')
        concat, norm_classes = layers.generator_conditioning(self.num_classes, self.conditioning,
                                                              self.norm)
        x = layers.spectral(project, layers.condition_latent(z, y, concat), **sn)
        x = x.reshape(x.shape[0], *base, self.features)
        for i in range(self.num_blocks):
            x = GeneratorBlock(self.features, norm=self.norm, spectral_norm=self.spectral_norm,
                               dtype=dtype, param_dtype=param_dtype, upsample=self.upsample,
                               axis_name=self.axis_name, num_classes=norm_classes,
                               name=f'block{i}')(x, train, y)
        x = nn.relu(layers.normalize(self.norm, x, train=train, name='out_norm', dtype=dtype,
                                     param_dtype=param_dtype, axis_name=self.axis_name, y=y,
                                     num_classes=norm_classes))
        out = nn.Conv(channels, (3,) * len(spatial), padding='SAME', dtype=dtype,
                      param_dtype=param_dtype, kernel_init=SHORTCUT_INIT, name='out')
        x = layers.spectral(out, x, **sn)
        return layers.output_activation(self.output_activation, x.astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
    """Optimized block (down) -> ``num_down - 1`` down-blocks -> ``num_plain`` blocks -> ReLU ->
    global sum pool -> Dense(1).

    Attributes:
      features: channels of every block (SNGAN: 128).
      num_down: number of x2 downsampling blocks, the optimized first block included (>= 1).
      num_plain: number of blocks without downsampling after them.
      norm: 'batch' | 'layer' | 'none' before each ReLU inside the blocks (SNGAN: 'none').
      spectral_norm: spectrally normalize every conv / Dense (SNGAN: True).
      dtype: computation dtype (None: inferred); pooling and the logit layer run in float32.
      param_dtype: parameter dtype.
      num_classes: K, the classes of the 'projection', 'acgan' and 'kplus1' heads.
      head: the output layer, one of :data:`ganjax.models.layers.D_HEADS`
        (:func:`ganjax.models.layers.logit_head`).
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    features: int = 128
    num_down: int = 2
    num_plain: int = 2
    norm: str = 'none'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    num_classes: int = 0
    head: str = 'logit'
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
        """Scores examples.

        Args:
          x: examples ``[B, *spatial, channels]``, spatial sizes divisible by ``2**num_down``.
          y: int class labels ``[B]``, read by the 'projection' head only.
          train: update normalization / spectral-norm state.

        Returns:
          ``{'logit': [B], 'features': [B, F], 'class_logits': [B, K] (class heads)}``, float32
          (:func:`ganjax.models.layers.logit_head`).
        """
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        spatial = x.shape[1:-1]
        if not spatial or any(s % 2 ** self.num_down for s in spatial):
            raise ConfigError(f'ResNetDiscriminator with {self.num_down} x2 down-blocks needs '
                              f'spatial sizes divisible by {2 ** self.num_down}, got input shape '
                              f'{x.shape}')
        if dtype is not None:
            x = x.astype(dtype)
        common = dict(norm=self.norm, spectral_norm=self.spectral_norm, dtype=dtype,
                      param_dtype=param_dtype, axis_name=self.axis_name)
        x = DiscriminatorBlock(self.features, optimized=True, name='block0', **common)(x, train)
        for i in range(1, self.num_down + self.num_plain):
            x = DiscriminatorBlock(self.features, downsample=i < self.num_down, name=f'block{i}',
                                   **common)(x, train)
        x = nn.relu(x).astype(jnp.float32)
        x = jnp.sum(x, axis=tuple(range(1, x.ndim - 1)))
        return layers.logit_head(x, self.spectral_norm, train, param_dtype, y, self.num_classes,
                                 self.head)
