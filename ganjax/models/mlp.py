"""Fully connected generator / discriminator pair for any data shape (Goodfellow et al. 2014).

The usual pair for low-dimensional data (2D toy mixtures, tabular / gene-expression vectors); images
work too (flattened).
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import layers

Array = jax.Array


class MLPGenerator(nn.Module):
    """z -> ``num_layers`` x [Dense(features), norm, ReLU] -> Dense(prod(data_shape)) -> activation.

    With ``widths`` the hidden layers have those widths (scGAN's 256-512-1024, Marouf et al.
    2020); with ``residual`` each hidden layer's input is concatenated to its output, as in
    CTGAN's generator (Xu et al. 2019, "Modeling Tabular data using Conditional GAN").

    Attributes:
      data_shape: shape of one generated example; the flat output is reshaped to it.
      latent_dim: size of z (checked at call time).
      features: width of every hidden layer.
      num_layers: number of hidden layers.
      widths: the hidden layers' widths (overrides features and num_layers when not empty).
      residual: concatenate each hidden layer's input to its output (CTGAN's residual layer).
      norm: 'batch' | 'layer' | 'none', applied after every hidden Dense.
      spectral_norm: spectrally normalize every Dense.
      output_activation: one of :data:`ganjax.models.layers.OUTPUT_ACTIVATIONS`.
      library_size: the per-example sum of the 'library_size' output.
      dtype: computation dtype (None: float32 by inference).
      param_dtype: parameter dtype.
      num_classes: > 0 makes G class-conditional, reading the label as `conditioning` says.
      conditioning: 'norm' (class-conditional gain and bias in every normalization layer),
        'concat' (one-hot label appended to z) or 'both'; see
        :data:`ganjax.models.layers.G_CONDITIONING`.
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    data_shape: tuple[int, ...]
    latent_dim: int = 100
    features: int = 256
    num_layers: int = 3
    widths: tuple[int, ...] = ()
    residual: bool = False
    norm: str = 'batch'
    spectral_norm: bool = False
    output_activation: str = 'tanh'
    library_size: float = 0.0
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
          train: batch statistics (and their running averages / spectral-norm state are updated)
            when True; running averages when False.

        Returns:
          Float32 examples ``[B, *data_shape]``.
        """
        layers.check_latent(z, self.latent_dim, type(self).__name__)
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        concat, norm_classes = layers.generator_conditioning(self.num_classes, self.conditioning,
                                                              self.norm)
        x = layers.condition_latent(z, y, concat)
        for i, width in enumerate(self.widths or (self.features,) * self.num_layers):
            dense = nn.Dense(width, use_bias=layers.bias_before(self.norm), dtype=dtype,
                             param_dtype=param_dtype, name=f'dense{i}')
            h = layers.spectral(dense, x, spectral_norm=self.spectral_norm, train=train,
                                param_dtype=param_dtype)
            h = layers.normalize(self.norm, h, train=train, name=f'norm{i}', dtype=dtype,
                                 param_dtype=param_dtype, axis_name=self.axis_name, y=y,
                                 num_classes=norm_classes)
            h = nn.relu(h)
            x = jnp.concatenate([h, x.astype(h.dtype)], axis=-1) if self.residual else h
        out = nn.Dense(layers.num_elements(self.data_shape), dtype=dtype,
                       param_dtype=param_dtype, name='out')
        x = layers.spectral(out, x, spectral_norm=self.spectral_norm, train=train,
                            param_dtype=param_dtype)
        x = layers.output_activation(self.output_activation, x.astype(jnp.float32),
                                     self.library_size)
        return x.reshape(x.shape[0], *self.data_shape)


class MLPDiscriminator(nn.Module):
    """Flatten -> ``num_layers`` x [Dense(features), norm, LeakyReLU(0.2)] -> Dense(1).

    As in DCGAN, the first hidden layer is never normalized (normalizing raw inputs would hide
    their scale from D).

    Attributes:
      features: width of every hidden layer.
      num_layers: number of hidden layers.
      widths: the hidden layers' widths (overrides features and num_layers when not empty;
        scGAN's critic: 1024-512-256).
      norm: 'batch' | 'layer' | 'none', on hidden layers after the first.
      spectral_norm: spectrally normalize every Dense.
      dtype: computation dtype (None: inferred); the logit layer always runs in float32.
      param_dtype: parameter dtype.
      num_classes: K, the classes of the 'projection', 'acgan' and 'kplus1' heads.
      head: the output layer, one of :data:`ganjax.models.layers.D_HEADS`
        (:func:`ganjax.models.layers.logit_head`).
      axis_name: pmap axis over which BatchNorm averages batch statistics (None under jit).
    """

    features: int = 256
    num_layers: int = 3
    widths: tuple[int, ...] = ()
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
          x: examples ``[B, ...]``.
          y: int class labels ``[B]``, read by the 'projection' head only.
          train: update normalization / spectral-norm state.

        Returns:
          ``{'logit': [B], 'features': [B, F], 'class_logits': [B, K] (class heads)}``, float32
          (:func:`ganjax.models.layers.logit_head`).
        """
        dtype = layers.resolve_dtype(self.dtype)
        param_dtype = layers.resolve_dtype(self.param_dtype, 'param_dtype')
        x = x.reshape(x.shape[0], -1)
        if dtype is not None:
            x = x.astype(dtype)
        for i, width in enumerate(self.widths or (self.features,) * self.num_layers):
            # Layer 0 is never normalized, so it keeps its bias.
            dense = nn.Dense(width, use_bias=i == 0 or layers.bias_before(self.norm),
                             dtype=dtype, param_dtype=param_dtype, name=f'dense{i}')
            x = layers.spectral(dense, x, spectral_norm=self.spectral_norm, train=train,
                                param_dtype=param_dtype)
            if i > 0:
                x = layers.normalize(self.norm, x, train=train, name=f'norm{i}', dtype=dtype,
                                     param_dtype=param_dtype, axis_name=self.axis_name)
            x = nn.leaky_relu(x, 0.2)
        return layers.logit_head(x, self.spectral_norm, train, param_dtype, y, self.num_classes,
                                 self.head)

