"""The 1D residual generator / discriminator pair of the DNA GANs.

Killoran, Lee, Delong, Duvenaud and Frey, "Generating and designing DNA with deep generative
models", 2017 (https://arxiv.org/abs/1712.06148): a WGAN-GP whose G maps z through a Dense layer
to a [L, C] sequence of features, then residual blocks (ReLU, conv width k, ReLU, conv width k,
the result scaled by 0.3 and added to the block's input; no normalisation), then a width-1 conv
to the 4 bases and a softmax. D mirrors it: a width-1 conv from the bases to C features, the
same blocks, and a Dense layer to the critic's value. FBGAN (Gupta and Zou, "Feedback GAN for DNA
optimizes protein functions", Nature Machine Intelligence 2019) uses the same blocks with a
Gumbel-softmax output; ExpressionGAN (Zrimec et al. 2022) the same code at length 1000.

Widths: model.g_features / d_features are C; model.res_blocks, kernel_size and res_scale set the
blocks; model.seq_output ('softmax' | 'gumbel_softmax') and model.temperature the output.
Convolutions are Dense layers on the unfolded windows (`conv1d`): the same function, faster
gradients on CPU.
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError
from ganjax.models import layers

Array = jax.Array

#: Values of model.seq_output.
SEQ_OUTPUTS = ('softmax', 'gumbel_softmax')


def gumbel_from_latent(z: Array, shape: tuple[int, ...]) -> Array:
    """Standard Gumbel noise [B, *shape], a deterministic function of each example's latent code.

    The generator is called without random keys (`G.apply(vars, z, y)`), so the noise of the
    Gumbel-softmax is keyed by the bits of the first two latent entries of each example: fresh
    latent codes give fresh noise, and the generator stays a function of z (the same z, the
    same sample).

    Args:
      z: latent codes [B, latent_dim >= 2].
      shape: shape of one example's noise.

    Returns:
      float32 [B, *shape].
    """
    bits = jax.lax.bitcast_convert_type(z[:, :2].astype(jnp.float32), jnp.uint32)
    keys = jax.vmap(lambda b: jax.random.wrap_key_data(b, impl='threefry2x32'))(bits)
    return jax.vmap(lambda k: jax.random.gumbel(k, shape, jnp.float32))(keys)


def unfold(x: Array, width: int) -> Array:
    """The 'SAME'-padded windows of a sequence, side by side: [B, L, C] -> [B, L, width * C].

    Window l holds positions l - (width - 1) // 2 ... l + width // 2 (zeros past the ends), in
    order, each position's C channels together: a Dense layer on it with kernel
    ``conv_kernel.reshape(width * C, F)`` is ``nn.Conv(F, (width,), padding='SAME')``.

    Args:
      x: [B, L, C].
      width: the window (conv kernel) width.

    Returns:
      [B, L, width * C].
    """
    length = x.shape[1]
    left = (width - 1) // 2
    padded = jnp.pad(x, ((0, 0), (left, width - 1 - left), (0, 0)))
    return jnp.concatenate([padded[:, j:j + length] for j in range(width)], axis=-1)


def conv1d(features: int, width: int, x: Array, *, name: str, spectral_norm: bool, train: bool,
           dtype: Any, param_dtype: Any) -> Array:
    """A width-`width` 'SAME' convolution computed as a Dense layer on `unfold`'s windows.

    The same function, parameters (kernel [width * C_in, F]) and FLOPs as ``nn.Conv``, but
    its gradients are matrix products: XLA:CPU ran the kernel gradients of these 1D convolutions
    inside the critic loop as slow generic convolutions (a step of a tiny model took 200 ms
    instead of about 10; measured here, 2026-12).

    Args:
      features: output channels.
      width: kernel width.
      x: [B, L, C_in].
      name: the Dense layer's name.
      spectral_norm: spectrally normalize the kernel.
      train: update spectral-norm state.
      dtype, param_dtype: computation and parameter dtypes.

    Returns:
      [B, L, features].
    """
    dense = nn.Dense(features, dtype=dtype, param_dtype=param_dtype, name=name)
    windows = x if width == 1 else unfold(x, width)
    return layers.spectral(dense, windows, spectral_norm=spectral_norm, train=train,
                           param_dtype=param_dtype)


class ResBlock1D(nn.Module):
    """x + res_scale * conv(act(norm(conv(act(norm(x)))))), convs of width k, 'SAME' padding.

    Attributes:
      features: channels (in = out).
      kernel_size: conv width.
      res_scale: weight of the residual branch (Killoran et al.: 0.3).
      norm: 'batch' | 'layer' | 'none' before each ReLU (the papers: none).
      spectral_norm: spectrally normalize the convs.
      dtype, param_dtype: computation and parameter dtypes.
      num_classes: > 0: class-conditional gain and bias of the norm layers.
      axis_name: pmap axis of BatchNorm statistics.
    """

    features: int
    kernel_size: int = 5
    res_scale: float = 0.3
    norm: str = 'none'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    num_classes: int = 0
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> Array:
        """Args: x [B, L, features]; y int labels [B] (conditional norms). Returns: same shape."""
        h = x
        for i in range(2):
            h = layers.normalize(self.norm, h, train=train, name=f'norm{i}', dtype=self.dtype,
                                 param_dtype=self.param_dtype, axis_name=self.axis_name, y=y,
                                 num_classes=self.num_classes)
            h = nn.relu(h)
            h = conv1d(self.features, self.kernel_size, h, name=f'conv{i}',
                       spectral_norm=self.spectral_norm, train=train, dtype=self.dtype,
                       param_dtype=self.param_dtype)
        return x + self.res_scale * h


class ResNet1DGenerator(nn.Module):
    """z -> Dense(L * C) -> [L, C] -> residual blocks -> width-1 conv to the alphabet -> softmax.

    Attributes:
      data_shape: (L, alphabet size), e.g. (64, 4).
      latent_dim: size of z.
      features: C, the channels of every block.
      num_blocks: residual blocks.
      kernel_size: conv width of the blocks.
      res_scale: weight of each block's residual branch.
      output: 'softmax' (Killoran et al.) or 'gumbel_softmax' (FBGAN; Jang et al. 2017,
        https://arxiv.org/abs/1611.01144), the noise from :func:`gumbel_from_latent`.
      temperature: the logits are divided by it before the softmax.
      norm: normalization in the blocks ('none' in the papers).
      spectral_norm: spectrally normalize every layer.
      dtype, param_dtype: computation and parameter dtypes.
      num_classes: > 0 makes G class-conditional (:func:`layers.generator_conditioning`).
      conditioning: 'concat' | 'norm' | 'both' (norm needs `norm` != 'none').
      axis_name: pmap axis of BatchNorm statistics.
    """

    data_shape: tuple[int, ...]
    latent_dim: int = 100
    features: int = 100
    num_blocks: int = 5
    kernel_size: int = 5
    res_scale: float = 0.3
    output: str = 'softmax'
    temperature: float = 1.0
    norm: str = 'none'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    num_classes: int = 0
    conditioning: str = 'concat'
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, z: Array, y: Optional[Array] = None, *, train: bool) -> Array:
        """Generates per-base probabilities.

        Args:
          z: latent codes [B, latent_dim].
          y: int labels [B] of a conditional generator.
          train: batch statistics / spectral-norm updates (only with norms or spectral norm).

        Returns:
          float32 [B, L, alphabet], each row a probability vector.
        """
        layers.check_latent(z, self.latent_dim, type(self).__name__)
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        length, alphabet = self.data_shape
        concat, norm_classes = layers.generator_conditioning(self.num_classes, self.conditioning,
                                                              self.norm)
        h = layers.condition_latent(z, y, concat)
        dense = nn.Dense(length * self.features, dtype=dtype, param_dtype=param_dtype,
                         name='project')
        h = layers.spectral(dense, h, spectral_norm=self.spectral_norm, train=train,
                            param_dtype=param_dtype)
        h = h.reshape(h.shape[0], length, self.features)
        for i in range(self.num_blocks):
            h = ResBlock1D(self.features, self.kernel_size, self.res_scale, self.norm,
                           self.spectral_norm, dtype, param_dtype, norm_classes, self.axis_name,
                           name=f'block{i}')(h, y, train=train)
        logits = conv1d(alphabet, 1, h, name='out', spectral_norm=self.spectral_norm,
                        train=train, dtype=dtype, param_dtype=param_dtype).astype(jnp.float32)
        if self.output == 'gumbel_softmax':
            logits = logits + gumbel_from_latent(z, (length, alphabet))
        return jax.nn.softmax(logits / self.temperature, axis=-1)


class ResNet1DDiscriminator(nn.Module):
    """Width-1 conv to C channels -> residual blocks -> flatten -> the logit head.

    Attributes:
      features: C.
      num_blocks, kernel_size, res_scale: as the generator's.
      norm: normalization in the blocks ('none' for WGAN-GP, whose penalty is per example).
      spectral_norm: spectrally normalize every layer.
      dtype, param_dtype: computation and parameter dtypes.
      num_classes, head: the output layer (:func:`ganjax.models.layers.logit_head`).
      axis_name: pmap axis of BatchNorm statistics.
    """

    features: int = 100
    num_blocks: int = 5
    kernel_size: int = 5
    res_scale: float = 0.3
    norm: str = 'none'
    spectral_norm: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    num_classes: int = 0
    head: str = 'logit'
    axis_name: Optional[str] = None

    @nn.compact
    def __call__(self, x: Array, y: Optional[Array] = None, *, train: bool) -> dict[str, Array]:
        """Scores sequences.

        Args:
          x: one-hot or soft sequences [B, L, alphabet].
          y: int labels [B] (the 'projection' head).
          train: update normalization / spectral-norm state.

        Returns:
          ``{'logit': [B], 'features': [B, L * C]}`` (plus ``'class_logits'`` for class heads).
        """
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        if dtype is not None:
            x = x.astype(dtype)
        h = conv1d(self.features, 1, x, name='in', spectral_norm=self.spectral_norm, train=train,
                   dtype=dtype, param_dtype=param_dtype)
        for i in range(self.num_blocks):
            h = ResBlock1D(self.features, self.kernel_size, self.res_scale, self.norm,
                           self.spectral_norm, dtype, param_dtype, 0, self.axis_name,
                           name=f'block{i}')(h, train=train)
        return layers.logit_head(h, self.spectral_norm, train, param_dtype, y, self.num_classes,
                                 self.head)


def check_options(o: dict[str, Any], shape: tuple[int, ...]) -> None:
    """Raises ConfigError for resnet1d options or a data shape it cannot make."""
    if len(shape) != 2:
        raise ConfigError(f'arch="resnet1d" makes sequences [length, alphabet] (e.g. (64, 4)); '
                          f'the data has shape {shape}')
    for key in ('res_blocks', 'kernel_size'):
        if not isinstance(o[key], int) or isinstance(o[key], bool) or o[key] < 1:
            raise ConfigError(f'model.{key} must be a positive integer, got {o[key]!r}')
    for key in ('res_scale', 'temperature'):
        if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or not o[key] > 0:
            raise ConfigError(f'model.{key} must be a positive number, got {o[key]!r}')
    layers.check_choice(o['seq_output'], SEQ_OUTPUTS, 'model.seq_output')
    if o['seq_output'] == 'gumbel_softmax' and o['latent_dim'] < 2:
        raise ConfigError("model.seq_output='gumbel_softmax' keys its noise by two latent "
                          f'entries; model.latent_dim={o["latent_dim"]} is too small')
