"""Building blocks shared by the ganjax models: dtypes, normalization, spectral norm, upsampling.

Every module here is a Flax Linen dataclass of hyperparameters. Mutable state (BatchNorm running
statistics and spectral-norm power-iteration vectors) lives in the ``'batch_stats'`` collection, so
a caller only ever needs ``mutable=['batch_stats']`` in train mode.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError, lookup

Array = jax.Array
Dtype = Any
Initializer = Callable[..., Array]

#: Normalization kinds understood by :func:`normalize`.
NORMS = ('batch', 'layer', 'none')
#: Output activations understood by :func:`output_activation`.
OUTPUT_ACTIVATIONS = ('tanh', 'none', 'relu', 'library_size')
#: How a class-conditional generator reads its label: 'norm' (class-conditional gain and bias of
#: every normalization layer, :func:`normalize`), 'concat' (one-hot label appended to z,
#: :func:`condition_latent`) or 'both'.
G_CONDITIONING = ('norm', 'concat', 'both')
#: Discriminator heads (:func:`logit_head`): 'logit' (unconditional), 'projection' (Miyato &
#: Koyama 2018), 'acgan' (Odena et al. 2017), 'kplus1' (Salimans et al. 2016).
D_HEADS = ('logit', 'projection', 'acgan', 'kplus1')
#: Heads with a K-class output.
CLASS_HEADS = ('acgan', 'kplus1')

# BatchNorm settings of the DCGAN / SNGAN reference code (PyTorch momentum 0.1 == Flax 0.9).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def resolve_dtype(dtype: Any, what: str = 'dtype') -> Optional[jnp.dtype]:
    """Turns a dtype given as a string ('float32', 'bfloat16'), numpy/jax type or None into a dtype.

    Args:
      dtype: the dtype or its name; None is passed through (Flax then infers the dtype).
      what: the name of the setting, used in the error message.

    Returns:
      A ``jnp.dtype`` or None.

    Raises:
      ConfigError: the name is not a floating-point dtype.
    """
    if dtype is None:
        return None
    try:
        resolved = jnp.dtype(dtype)
    except TypeError as e:
        raise ConfigError(f'{what}={dtype!r} is not a dtype name (use e.g. "float32" or '
                          f'"bfloat16")') from e
    if not jnp.issubdtype(resolved, jnp.floating):
        raise ConfigError(f'{what}={dtype!r} is not a floating-point dtype')
    return resolved


def depth_to_space(x: Array, r: int) -> Array:
    """Moves channel blocks into space ("pixel shuffle", Shi et al. 2016) for any spatial rank.

    Channels-last: ``x`` is ``[B, S_1, ..., S_d, C * r**d]`` and the result is
    ``[B, S_1 * r, ..., S_d * r, C]`` with::

      out[b, s_1*r + o_1, ..., s_d*r + o_d, c] = x[b, s_1, ..., s_d, ((o_1*r + o_2)*r + ...)*C + c]

    i.e. the channel axis is read as ``(o_1, ..., o_d, c)`` in row-major order (TensorFlow's
    ``depth_to_space`` layout for d = 2).

    Args:
      x: array with at least one spatial axis between batch and channels.
      r: the block size (upsampling factor of every spatial axis).

    Returns:
      The rearranged array.
    """
    d = x.ndim - 2
    if d < 1:
        raise ValueError(f'depth_to_space needs [batch, *spatial, channels], got shape {x.shape}')
    if r < 1:
        raise ValueError(f'depth_to_space block size must be >= 1, got {r}')
    batch, spatial, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
    if channels % (r ** d):
        raise ValueError(f'depth_to_space: {channels} channels are not divisible by r**d = '
                         f'{r}**{d}')
    out_channels = channels // r ** d
    x = x.reshape(batch, *spatial, *([r] * d), out_channels)
    # Axes now: 0 batch, 1..d spatial, d+1..2d offsets, 2d+1 channels. Interleave s_i with o_i.
    perm = [0]
    for i in range(d):
        perm += [1 + i, 1 + d + i]
    perm.append(2 * d + 1)
    x = x.transpose(perm)
    return x.reshape(batch, *(s * r for s in spatial), out_channels)


def space_to_depth(x: Array, r: int) -> Array:
    """Inverse of :func:`depth_to_space`: ``[B, *(S*r), C] -> [B, *S, C*r**d]``.

    Args:
      x: array ``[batch, *spatial, channels]`` whose spatial sizes are divisible by ``r``.
      r: the block size.

    Returns:
      The rearranged array.
    """
    d = x.ndim - 2
    if d < 1:
        raise ValueError(f'space_to_depth needs [batch, *spatial, channels], got shape {x.shape}')
    batch, spatial, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
    if any(s % r for s in spatial):
        raise ValueError(f'space_to_depth: spatial shape {spatial} is not divisible by {r}')
    split = []
    for s in spatial:
        split += [s // r, r]
    x = x.reshape(batch, *split, channels)
    perm = [0] + [1 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)] + [2 * d + 1]
    x = x.transpose(perm)
    return x.reshape(batch, *(s // r for s in spatial), channels * r ** d)


def nearest_upsample(x: Array, r: int = 2) -> Array:
    """Nearest-neighbour upsampling of every spatial axis by ``r`` (channels-last, any rank).

    Args:
      x: array ``[batch, *spatial, channels]``.
      r: the integer factor.

    Returns:
      Array ``[batch, *(s * r for s in spatial), channels]``.
    """
    for axis in range(1, x.ndim - 1):
        x = jnp.repeat(x, r, axis=axis)
    return x


def avg_pool2(x: Array) -> Array:
    """2x average pooling of every spatial axis (channels-last, any rank)."""
    d = x.ndim - 2
    return nn.avg_pool(x, window_shape=(2,) * d, strides=(2,) * d, padding='VALID')


def icnr(base_init: Initializer, r: int, rank: int) -> Initializer:
    """ICNR kernel initializer for sub-pixel convolution (Aitken et al. 2017, arXiv:1707.02937).

    A conv followed by :func:`depth_to_space` starts out equal to "conv, then nearest-neighbour
    upsample": every one of the ``r**rank`` sub-pixel phases gets the same kernel, which removes the
    checkerboard pattern that independently initialised phases produce.

    Args:
      base_init: initializer of a kernel ``[*window, in, features]``.
      r: the upsampling factor.
      rank: the number of spatial axes.

    Returns:
      An initializer of kernels ``[*window, in, features * r**rank]``.
    """
    copies = r ** rank

    def init(key, shape, dtype=jnp.float32):
        if shape[-1] % copies:
            raise ValueError(f'ICNR: {shape[-1]} output channels are not divisible by {copies}')
        base = base_init(key, (*shape[:-1], shape[-1] // copies), dtype)
        # depth_to_space reads the channel axis as (phase, feature): tiling repeats the whole
        # feature block once per phase.
        return jnp.tile(base, (1,) * (len(shape) - 1) + (copies,))

    return init


def spectral(layer: nn.Module, x: Array, *, spectral_norm: bool, train: bool,
             param_dtype: Dtype = jnp.float32) -> Array:
    """Applies ``layer`` to ``x``, spectrally normalized (Miyato et al. 2018) when asked.

    Must be called inside a compact method; ``layer`` must be constructed there too. The power
    iteration state is stored in 'batch_stats' under ``<layer name>_sn`` as
    ``'<layer name>/kernel/u'`` and ``'<layer name>/kernel/sigma'``; it is updated only when
    ``train`` is True.

    Args:
      layer: a Dense/Conv/ConvTranspose module constructed in the caller's compact method.
      x: the layer's input.
      spectral_norm: whether to wrap the layer in ``nn.SpectralNorm``.
      train: update the power-iteration vectors (train mode) or only read them.
      param_dtype: dtype of the stored ``u`` and ``sigma``.

    Returns:
      The layer's output.
    """
    if not spectral_norm:
        return layer(x)
    return nn.SpectralNorm(layer, collection_name='batch_stats', param_dtype=param_dtype,
                           name=f'{layer.name}_sn')(x, update_stats=train)


def normalize(kind: str, x: Array, *, train: bool, name: str, dtype: Dtype = None,
              param_dtype: Dtype = jnp.float32, axis_name: Optional[str] = None,
              y: Optional[Array] = None, num_classes: int = 0) -> Array:
    """Applies the normalization ``kind`` to ``x`` (inside a compact method).

    'batch' is BatchNorm over all but the channel axis (running statistics in 'batch_stats',
    updated only in train mode); 'layer' normalizes each example over all its non-batch axes, as the
    WGAN-GP critic does (Gulrajani et al. 2017); 'none' returns ``x``.

    With ``num_classes > 0`` the gain and bias are per class (conditional batch normalization,
    de Vries et al. 2017, https://arxiv.org/abs/1707.00683, as in Miyato & Koyama 2018 and
    BigGAN): ``x_hat * (1 + gain[y]) + bias[y]`` with both embeddings initialised to zero, so the
    layer starts as the unconditional one (gain 1, bias 0). The gain is one plus the embedding,
    not the embedding alone, which would start every channel at gain 0 (compare_gan's issue 54).

    Args:
      kind: one of :data:`NORMS`.
      x: activations ``[batch, ..., channels]``.
      train: use batch statistics and update running ones (True) or use running ones (False).
      name: the submodule's name.
      dtype: computation dtype.
      param_dtype: dtype of scale/bias and running statistics.
      axis_name: the mapped axis (pmap) over which BatchNorm averages its batch statistics in
        train mode, so that each device's statistics are those of the global batch; None under
        jit, where the batch mean is already global.
      y: int labels ``[B]`` (needed when ``num_classes > 0``).
      num_classes: > 0 for class-conditional gain and bias ('batch' and 'layer' only).

    Returns:
      The normalized activations.
    """
    if num_classes and kind != 'none':
        return _conditional_norm(kind, x, train=train, name=name, dtype=dtype,
                                 param_dtype=param_dtype, axis_name=axis_name, y=y,
                                 num_classes=num_classes)
    if kind == 'batch':
        return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                            epsilon=BATCH_NORM_EPSILON, dtype=dtype, param_dtype=param_dtype,
                            axis_name=axis_name if train else None, name=name)(x)
    if kind == 'layer':
        return nn.LayerNorm(reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1,
                            dtype=dtype, param_dtype=param_dtype, name=name)(x)
    if kind == 'none':
        return x
    raise ConfigError(f'unknown normalization {kind!r}; choose one of {list(NORMS)}')


def _conditional_norm(kind: str, x: Array, *, train: bool, name: str, dtype: Dtype,
                      param_dtype: Dtype, axis_name: Optional[str], y: Optional[Array],
                      num_classes: int) -> Array:
    labels = _labels(y, num_classes, 'generator (conditional normalization)')
    if kind == 'batch':
        x = nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                         epsilon=BATCH_NORM_EPSILON, use_scale=False, use_bias=False, dtype=dtype,
                         param_dtype=param_dtype, axis_name=axis_name if train else None,
                         name=name)(x)
    elif kind == 'layer':
        x = nn.LayerNorm(reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1, use_scale=False,
                         use_bias=False, dtype=dtype, param_dtype=param_dtype, name=name)(x)
    else:
        raise ConfigError(f'unknown normalization {kind!r}; choose one of {list(NORMS)}')
    channels = x.shape[-1]
    embed = dict(embedding_init=nn.initializers.zeros, dtype=jnp.float32, param_dtype=param_dtype)
    gain = nn.Embed(num_classes, channels, name=f'{name}_class_gain', **embed)(labels)
    bias = nn.Embed(num_classes, channels, name=f'{name}_class_bias', **embed)(labels)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
    return x * (1.0 + gain).reshape(shape).astype(x.dtype) + bias.reshape(shape).astype(x.dtype)


def output_activation(kind: str, x: Array, library_size: float = 0.0) -> Array:
    """Applies a generator's output activation.

    Args:
      kind: 'tanh' (images in [-1, 1]), 'none', 'relu' (non-negative values, e.g. expression
        counts, with exact zeros) or 'library_size': ReLU, then each example rescaled so that its
        values sum to `library_size` (the library-size normalisation layer of scGAN, Marouf et
        al. 2020, Nature Communications 11:166, for data normalised to that many counts per cell).
      x: the last layer's output ``[B, ...]``.
      library_size: the sum of each example for 'library_size'.

    Returns:
      The activated output, of x's shape.
    """
    if kind == 'tanh':
        return jnp.tanh(x)
    if kind == 'none':
        return x
    if kind == 'relu':
        return nn.relu(x)
    if kind == 'library_size':
        if not library_size > 0:
            raise ConfigError("output_activation='library_size' needs model.library_size > 0 (the "
                              'counts per cell the data is normalised to, data.target_sum)')
        x = nn.relu(x)
        axes = tuple(range(1, x.ndim))
        # The epsilon only matters for an all-zero output, which then stays zero instead of NaN.
        return x * (library_size / (jnp.sum(x, axis=axes, keepdims=True) + 1e-6))
    raise ConfigError(f'unknown output_activation {kind!r}; choose one of '
                      f'{list(OUTPUT_ACTIVATIONS)}')


def bias_before(norm: str) -> bool:
    """Whether a layer feeding the normalization ``norm`` should have a bias.

    BatchNorm subtracts the per-channel batch mean, which cancels a per-channel bias exactly (its
    gradient is zero); LayerNorm over all axes of an example does not, so the bias stays.
    """
    return norm != 'batch'


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """Returns ``value`` if it is one of ``choices``, else raises a ConfigError naming ``what``."""
    return lookup({c: c for c in choices}, value, what)


class _Upsample(nn.Module):
    """Fields shared by every x2 upsampling layer of :data:`UPSAMPLE`.

    Attributes:
      features: output channels.
      kernel_size: window size along every spatial axis (None: the mode's own default).
      rank: number of spatial axes; None infers it from the input (``x.ndim - 2``).
      dtype: computation dtype (None: inferred).
      param_dtype: parameter dtype.
      spectral_norm: spectrally normalize the layer's kernel.
      use_bias: add a bias (turn off when a BatchNorm follows).
      kernel_init: initializer of the kernel.
    """

    features: int
    kernel_size: Optional[int] = None
    rank: Optional[int] = None
    dtype: Dtype = None
    param_dtype: Dtype = jnp.float32
    spectral_norm: bool = False
    use_bias: bool = True
    kernel_init: Initializer = nn.initializers.lecun_normal()

    default_kernel_size = 3

    def _rank_and_window(self, x: Array) -> tuple[int, tuple[int, ...]]:
        rank = x.ndim - 2
        if rank < 1:
            raise ValueError(f'{type(self).__name__} needs [batch, *spatial, channels], got shape '
                             f'{x.shape}')
        if self.rank is not None and self.rank != rank:
            raise ValueError(f'{type(self).__name__} was built for {self.rank} spatial axes but '
                             f'got an input of shape {x.shape} ({rank} spatial axes)')
        k = self.default_kernel_size if self.kernel_size is None else self.kernel_size
        return rank, (k,) * rank

    def _conv_kwargs(self) -> dict[str, Any]:
        return dict(use_bias=self.use_bias, dtype=resolve_dtype(self.dtype),
                    param_dtype=resolve_dtype(self.param_dtype, 'param_dtype'))

    def _spectral(self, conv: nn.Module, x: Array, train: bool) -> Array:
        return spectral(conv, x, spectral_norm=self.spectral_norm, train=train,
                        param_dtype=resolve_dtype(self.param_dtype, 'param_dtype'))


class ConvDepthToSpace(_Upsample):
    """x2 upsampling by a stride-1 'SAME' conv to ``features * 2**rank`` channels, then
    :func:`depth_to_space` (sub-pixel convolution, Shi et al. 2016, arXiv:1609.05158).

    With a 3x3 window each output phase sees the input pixel under it and its neighbours, so this
    layer can express any 4x4 stride-2 transposed conv, while its gradient is an ordinary conv's
    (fast; the transposed conv's is slow in XLA on CPU, jax-ml/jax#23783). The kernel is
    ICNR-initialised so that it starts without checkerboard artifacts.
    """

    default_kernel_size = 3

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        """Args: x ``[B, *S, C_in]``; train: update spectral-norm state.
        Returns: ``[B, *(2 S), features]``."""
        rank, window = self._rank_and_window(x)
        conv = nn.Conv(self.features * 2 ** rank, window, padding='SAME',
                       kernel_init=icnr(self.kernel_init, 2, rank), name='conv',
                       **self._conv_kwargs())
        return depth_to_space(self._spectral(conv, x, train), 2)


class TransposeConvUp(_Upsample):
    """x2 upsampling by ``nn.ConvTranspose`` with stride 2 and 'SAME' padding (DCGAN's layer).

    Default window 4 (a multiple of the stride, against checkerboard artifacts, Odena et al. 2016).
    Its gradient is very slow under XLA on CPU (jax-ml/jax#23783); prefer 'conv_d2s'.
    """

    default_kernel_size = 4

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        """Args: x ``[B, *S, C_in]``; train: update spectral-norm state.
        Returns: ``[B, *(2 S), features]``."""
        rank, window = self._rank_and_window(x)
        conv = nn.ConvTranspose(self.features, window, strides=(2,) * rank, padding='SAME',
                                kernel_init=self.kernel_init, name='conv', **self._conv_kwargs())
        return self._spectral(conv, x, train)


class _PhaseConvTranspose(nn.Module):
    """The kernel and bias of a 4-tap stride-2 transposed conv, applied phase by phase.

    Output position ``2i + p`` (per axis) of the transposed conv sums input positions
    ``(i - 1, i)`` with taps ``(0, 2)`` for ``p = 0`` and ``(i, i + 1)`` with taps ``(1, 3)`` for
    ``p = 1``. So each of the ``2**rank`` output phases is a stride-1 'VALID' conv with the
    2-tap sub-kernel ``kernel[p::2]`` on the input padded by one on the matching side, and the
    phases interleave by :func:`depth_to_space`. Same parameters, same function and the same FLOPs
    as ``nn.ConvTranspose``, but forward and gradients are ordinary small convolutions.
    """

    features: int
    rank: int
    use_bias: bool = True
    dtype: Dtype = None
    param_dtype: Dtype = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        rank = self.rank
        kernel = self.param('kernel', self.kernel_init, (4,) * rank + (x.shape[-1], self.features),
                            self.param_dtype)
        bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                          self.param_dtype) if self.use_bias else None
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        spatial = tuple(range(1, rank + 1))
        numbers = jax.lax.ConvDimensionNumbers((0, rank + 1) + spatial,
                                               (rank + 1, rank) + tuple(range(rank)),
                                               (0, rank + 1) + spatial)
        phases = []
        for phase in itertools.product((0, 1), repeat=rank):
            sub = kernel[tuple(slice(p, None, 2) for p in phase)]
            pads = [(1, 0) if p == 0 else (0, 1) for p in phase]
            phases.append(jax.lax.conv_general_dilated(x, sub, (1,) * rank, pads,
                                                       dimension_numbers=numbers))
        # Channels (phase_1, ..., phase_d, c): the layout depth_to_space reads.
        y = depth_to_space(jnp.concatenate(phases, axis=-1), 2)
        return y + bias if bias is not None else y


class TransposePhases(_Upsample):
    """x2 upsampling by DCGAN's 4x4 stride-2 transposed conv, computed as ``2**rank`` phase convs.

    The same layer as 'transpose' (same parameters and outputs: tested), but each of the
    ``2**rank`` output phases is a 2-tap stride-1 conv, interleaved by depth-to-space (the
    sub-pixel view of a transposed conv, Shi et al. 2016). XLA's ``ConvTranspose`` gradient is a
    dilated convolution that runs very slowly on CPU (jax-ml/jax#23783); these are ordinary convs,
    with 4/9 of the FLOPs of 'conv_d2s' (whose 3-tap window covers both phases' taps).
    """

    default_kernel_size = 4

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        """Args: x ``[B, *S, C_in]``; train: update spectral-norm state.
        Returns: ``[B, *(2 S), features]``."""
        rank, window = self._rank_and_window(x)
        if window != (4,) * rank:
            raise ConfigError(f"upsample='transpose_phases' computes the 4x4 stride-2 transposed "
                              f'conv; kernel size {window[0]} is not supported')
        conv = _PhaseConvTranspose(self.features, rank, kernel_init=self.kernel_init,
                                   name='conv', **self._conv_kwargs())
        return self._spectral(conv, x, train)


class ResizeConv(_Upsample):
    """x2 nearest-neighbour upsampling followed by a stride-1 'SAME' conv (Odena et al. 2016,
    "Deconvolution and Checkerboard Artifacts"; the SNGAN generator's up-block)."""

    default_kernel_size = 3

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        """Args: x ``[B, *S, C_in]``; train: update spectral-norm state.
        Returns: ``[B, *(2 S), features]``."""
        _, window = self._rank_and_window(x)
        conv = nn.Conv(self.features, window, padding='SAME', kernel_init=self.kernel_init,
                       name='conv', **self._conv_kwargs())
        return self._spectral(conv, nearest_upsample(x, 2), train)


#: Upsampling mode name -> module class. All take the same fields (features, kernel_size, rank,
#: dtype, param_dtype, spectral_norm, use_bias, kernel_init), are called as ``layer(x, train)`` and
#: double every spatial axis.
UPSAMPLE: dict[str, type[_Upsample]] = {
    'conv_d2s': ConvDepthToSpace,
    'transpose': TransposeConvUp,
    'transpose_phases': TransposePhases,
    'resize_conv': ResizeConv,
}


def make_upsample(mode: str, features: int, **kwargs: Any) -> _Upsample:
    """Looks up ``mode`` in :data:`UPSAMPLE` and constructs the layer.

    Args:
      mode: a key of :data:`UPSAMPLE`.
      features: output channels.
      **kwargs: the other fields of :class:`_Upsample` (kernel_size, rank, dtype, ...; name).

    Returns:
      The (unbound) upsampling module.

    Raises:
      ConfigError: unknown mode.
    """
    return lookup(UPSAMPLE, mode, 'model.upsample')(features, **kwargs)


def check_latent(z: Array, latent_dim: int, where: str) -> None:
    """Raises a ConfigError naming ``where`` unless ``z`` is ``[batch, latent_dim]``."""
    if z.ndim != 2 or z.shape[-1] != latent_dim:
        raise ConfigError(f'{where} expects z of shape [batch, {latent_dim}] (latent_dim), got '
                          f'{z.shape}')


def logit_head(x: Array, spectral_norm: bool, train: bool, param_dtype: Dtype,
               y: Optional[Array] = None, num_classes: int = 0,
               head: str = 'logit') -> dict[str, Array]:
    """The output layer of every discriminator (inside a compact method).

    It runs in float32 whatever the model's dtype, so logits and losses keep full precision. Heads:

    - 'logit': Dense(1), named 'logit'.
    - 'projection': Dense(1) plus ``<embed(y), features>`` (Miyato & Koyama, "cGANs with
      Projection Discriminator", ICLR 2018, https://arxiv.org/abs/1802.05637), the embedding
      named 'class_embed'.
    - 'acgan': Dense(1) plus an auxiliary classifier Dense(K) named 'classifier' (Odena et al.,
      "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017,
      https://arxiv.org/abs/1610.09585).
    - 'kplus1': Dense(K) named 'classifier', the K real classes of a K+1-class discriminator whose
      fake class has its logit fixed at 0; the real-vs-fake logit is then
      ``logsumexp(class_logits)`` (D(x) = Z / (Z + 1), Z = sum_k exp(l_k): Salimans et al.,
      "Improved Techniques for Training GANs", NeurIPS 2016, https://arxiv.org/abs/1606.03498).

    Args:
      x: features ``[B, ...]`` (flattened here).
      spectral_norm: spectrally normalize the Dense layers.
      train: update spectral-norm state.
      param_dtype: parameter dtype.
      y: int labels ``[B]`` (read by the 'projection' head only).
      num_classes: K, for every head but 'logit'.
      head: one of :data:`D_HEADS`.

    Returns:
      ``{'logit': float32 [B], 'features': float32 [B, F]}`` (the flattened input of this layer,
      for feature matching), plus ``'class_logits'``: float32 ``[B, K]`` for the class heads.
    """
    check_choice(head, D_HEADS, 'model.d_head')
    if head != 'logit' and num_classes < 1:
        raise ConfigError(f'the {head!r} discriminator head needs labelled data (num_classes > 0)')
    x = x.reshape(x.shape[0], -1).astype(jnp.float32)
    out = {'features': x}
    sn = dict(spectral_norm=spectral_norm, train=train, param_dtype=param_dtype)
    if head in CLASS_HEADS:
        classifier = nn.Dense(num_classes, dtype=jnp.float32, param_dtype=param_dtype,
                              name='classifier')
        out['class_logits'] = spectral(classifier, x, **sn)
    if head == 'kplus1':
        out['logit'] = jax.nn.logsumexp(out['class_logits'], axis=-1)
        return out
    dense = nn.Dense(1, dtype=jnp.float32, param_dtype=param_dtype, name='logit')
    logits = spectral(dense, x, **sn)[:, 0]
    if head == 'projection':
        embed = nn.Embed(num_classes, x.shape[-1], dtype=jnp.float32, param_dtype=param_dtype,
                         name='class_embed')(_labels(y, num_classes, 'discriminator'))
        logits = logits + jnp.sum(embed * x, axis=-1)
    out['logit'] = logits
    return out


def _labels(y: Optional[Array], num_classes: int, where: str) -> Array:
    if y is None:
        raise ConfigError(f'a class-conditional {where} (num_classes={num_classes}) needs labels y')
    return jnp.asarray(y, jnp.int32).reshape(-1)


def condition_latent(z: Array, y: Optional[Array], num_classes: int) -> Array:
    """Appends the one-hot label to the latent code of a class-conditional generator.

    Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014,
    https://arxiv.org/abs/1411.1784.

    Args:
      z: latent codes ``[B, latent_dim]``.
      y: int labels ``[B]`` (needed when ``num_classes > 0``).
      num_classes: 0 for an unconditional generator (``z`` is returned as is).

    Returns:
      ``[B, latent_dim + num_classes]`` codes, or ``z``.
    """
    if not num_classes:
        return z
    one_hot = jax.nn.one_hot(_labels(y, num_classes, 'generator'), num_classes, dtype=z.dtype)
    return jnp.concatenate([z, one_hot], axis=-1)


def generator_conditioning(num_classes: int, conditioning: str, norm: str) -> tuple[int, int]:
    """Splits a conditional generator's classes between its latent input and its norm layers.

    Args:
      num_classes: the generator's classes (0 = unconditional).
      conditioning: one of :data:`G_CONDITIONING`.
      norm: the generator's normalization kind.

    Returns:
      ``(classes appended to z, classes of the norm layers)``: ``num_classes`` or 0 each (both
      0 for an unconditional generator).

    Raises:
      ConfigError: for an unknown `conditioning`, or 'norm' conditioning without a norm layer.
    """
    check_choice(conditioning, G_CONDITIONING, 'model.g_conditioning')
    if not num_classes:
        return 0, 0
    if conditioning == 'concat':
        return num_classes, 0
    if norm == 'none':
        raise ConfigError(f'model.g_conditioning={conditioning!r} needs normalization layers in G '
                          "(model.g_norm='batch' or 'layer'); with g_norm='none' use 'concat'")
    return (num_classes if conditioning == 'both' else 0), num_classes


def num_elements(shape: Sequence[int]) -> int:
    """Product of a shape's sizes (1 for ``()``)."""
    return int(math.prod(shape))
