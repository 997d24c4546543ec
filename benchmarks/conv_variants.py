"""Ways of computing a stride-1 'SAME' convolution on XLA, measured by ``conv_impl.py``.

These are the subjects of a benchmark, not part of the library: the measurements below found that
plain ``nn.Conv`` compiled with ``ganjax.parallel.CPU_CONV_COMPILER_OPTIONS`` is the fastest on the
CPU, so the models use ``nn.Conv`` and ``ganjax.parallel`` passes the options.

:class:`PatchConv` is a drop-in for ``nn.Conv(features, kernel_size, padding='SAME')`` (stride 1,
no dilation, no groups): same fields, same parameters ('kernel' ``[*window, in, out]``, 'bias'
``[out]``), same result, so it also works inside ``nn.SpectralNorm``. Its ``impl`` field picks the
computation from :data:`CONV_IMPLS`:

* ``'xla'``: ``lax.conv_general_dilated``, exactly what ``nn.Conv`` emits (the default).
* ``'xla_nchw'``: the same conv on channels-first transposes (NCHW / OIHW).
* ``'im2col'``: the k**d shifted views of the padded input concatenated on channels, then one
  matmul with the kernel reshaped to ``[k**d * in, out]``; forward, input gradient and kernel
  gradient are all plain matmuls (plus slicing / padding).
* ``'shifted_sum'``: the sum over the window of (shifted view) @ kernel[offset]: k**d smaller
  matmuls, no patch tensor.
* ``'output_shift'``: one matmul of the padded input with all taps side by side, then the sum of
  the k**d shifted output blocks ("col2im").
* ``'patches'``: ``lax.conv_general_dilated_patches`` (itself a conv with a one-hot kernel), then
  a matmul.

When each is fastest, and why (XLA CPU, jax/jaxlib 0.10.2, 2-core Xeon @ 2.8 GHz with AVX-512,
float32, forward + input and kernel gradient of the DCGAN-64 generator's convs at batch 64;
``benchmarks/conv_impl.py``, results/conv_impl_cpu.json)::

  median ms per call,          xla      xla    im2col  shifted   output  patches
  batch 64, 3x3 window                 +E              sum     shift
  4x4x512 -> 1024 channels     299     159      157      180     1062      501
  8x8x256 -> 512               191     124      173      202     1208      785
  16x16x128 -> 256             308     133      213      227     1578     1451
  32x32x64 -> 12               110      53      188      164      261     2706
  whole generator fwd+bwd      862     566      754   (im2col on the first three convs and
  (train mode, BatchNorm)                              'xla' on the last: 676)

  "+E": compiled with ganjax.parallel.CPU_CONV_COMPILER_OPTIONS. 'xla_nchw' +E: 153, 119, 131, 48 ms (within
  noise of 'xla' +E); 'patches' +E: 277, 361, 737, 1114 ms. Whole generator:
  /tmp script, not in the repository (DCGANGenerator with nn.Conv swapped for PatchConv).

* jaxlib 0.10's XLA:CPU hands every convolution (forward and both gradients) to YNNPACK by
  default (its default ``xla_cpu_experimental_ynn_fusion_type`` list is individual_dot,
  individual_convolution and reduce), and YNNPACK's convolutions are slow for these shapes (97,
  152, 94 and 25 GFLOP/s forward + backward above, against 182, 234, 217 and 51 for XLA's own
  Eigen convolution). Under the default options 'im2col' therefore beats 'xla' on the three
  large convs (its matmuls run in YNNPACK: 184, 168, 136 GFLOP/s), but not on the last one (64 ->
  12 channels: a 12-wide matmul is memory-bound and the 9x patch tensor costs more than it
  saves).
* The fastest way of all is ``'xla'`` compiled with :data:`ganjax.parallel.CPU_CONV_COMPILER_OPTIONS` (YNNPACK
  kept for dots and reductions, convolutions left to Eigen): then 'xla' is the fastest or tied on
  every one of these shapes, and the whole DCGAN-64 generator forward + backward is 1.52x faster
  than with the default options (1.44-1.65x over four runs; 'im2col' everywhere gains 1.14x
  without them), the whole DCGAN-64 training step 1.29x (1989 -> 1537 ms, batch 64). Pass
  :func:`ganjax.parallel.cpu_conv_compiler_options` to ``jax.jit(..., compiler_options=...)`` of the step, or
  set ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` for the process.
* 'shifted_sum' is a little slower than 'im2col' (nine smaller matmuls, nine partial outputs);
  'output_shift' and 'patches' are much slower (the former writes a k**d-times wider output and
  sums it; the latter's patch extraction is a convolution with a k**d*in-wide one-hot kernel).
  'xla_nchw' is within noise of 'xla' alone, but inside a whole training step XLA kept some of its
  convs (the generator's forward inside the n_critic loop) channels-first (dim_labels
  bf01_oi01->bf01), and the DCGAN-64 step took 8.9 s instead of 1.7 s. Do not use it.

The other XLA:CPU options tried (``xla_cpu_prefer_vector_width=512``,
``xla_cpu_enable_fast_math``, ``xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME``, both
``xla_cpu_scheduler_type`` values) changed the generator's time by less than the run-to-run noise;
oneDNN (``xla_cpu_use_onednn`` with ``xla_cpu_experimental_onednn_fusion_type=dot``) ran the big
matmuls faster but the kernel-gradient matmul slower, and crashed (SIGILL) on 'shifted_sum';
``xla_cpu_experimental_onednn_custom_call`` rewrote nothing.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
Dtype = Any
Initializer = Callable[..., Array]
PrecisionLike = Any


def _same_pads(window: Sequence[int]) -> list[tuple[int, int]]:
    # lax's 'SAME' for stride 1: total padding k - 1, the smaller half before.
    return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in window]


def _pad(x: Array, window: Sequence[int]) -> Array:
    pads = _same_pads(window)
    if not any(lo or hi for lo, hi in pads):
        return x
    return jnp.pad(x, [(0, 0)] + pads + [(0, 0)])


def _offsets(window: Sequence[int]):
    # Row-major over the window, the order of kernel.reshape(-1, in, out).
    return itertools.product(*(range(k) for k in window))


def _shift(xp: Array, offset: Sequence[int], spatial: Sequence[int]) -> Array:
    return xp[(slice(None),) + tuple(slice(o, o + s) for o, s in zip(offset, spatial))]


def _contract_channels(x: Array, w: Array, precision: PrecisionLike) -> Array:
    # [B, *S, K] x [K, N] -> [B, *S, N]
    return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)


def _dimension_numbers(rank: int) -> lax.ConvDimensionNumbers:
    spatial = tuple(range(1, rank + 1))
    lhs = (0, rank + 1) + spatial
    rhs = (rank + 1, rank) + tuple(range(rank))
    return lax.ConvDimensionNumbers(lhs, rhs, lhs)


def conv_xla(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """``lax.conv_general_dilated``, channels-last, exactly what ``nn.Conv`` computes."""
    rank = kernel.ndim - 2
    return lax.conv_general_dilated(x, kernel, (1,) * rank, 'SAME',
                                    dimension_numbers=_dimension_numbers(rank),
                                    precision=precision)


def conv_xla_nchw(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """``lax.conv_general_dilated`` on channels-first transposes (NCHW / OIHW). Measured only: it
    made a whole DCGAN-64 step 5x slower on the CPU (see the module docstring)."""
    rank = kernel.ndim - 2
    xt = jnp.moveaxis(x, -1, 1)
    kt = jnp.transpose(kernel, (rank + 1, rank) + tuple(range(rank)))
    y = lax.conv_general_dilated(xt, kt, (1,) * rank, 'SAME', precision=precision)
    return jnp.moveaxis(y, 1, -1)


def conv_im2col(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """Patches = the k**d shifted views concatenated on channels; one matmul with the kernel
    reshaped to ``[k**d * in, out]``."""
    window, cout = kernel.shape[:-2], kernel.shape[-1]
    spatial = x.shape[1:-1]
    xp = _pad(x, window)
    views = [_shift(xp, o, spatial) for o in _offsets(window)]
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return _contract_channels(patches, kernel.reshape(-1, cout), precision)


def conv_shifted_sum(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """Sum over the window of (shifted input view) @ kernel[offset]: k**d matmuls, no patches."""
    window = kernel.shape[:-2]
    spatial = x.shape[1:-1]
    xp = _pad(x, window)
    y = None
    for o in _offsets(window):
        term = _contract_channels(_shift(xp, o, spatial), kernel[o], precision)
        y = term if y is None else y + term
    return y


def conv_output_shift(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """One matmul of the padded input with all k**d kernel taps side by side, ``[in, k**d * out]``,
    then the sum of the k**d shifted output blocks ("col2im")."""
    window, (cin, cout) = kernel.shape[:-2], kernel.shape[-2:]
    taps = int(np.prod(window))
    spatial = x.shape[1:-1]
    xp = _pad(x, window)
    w = jnp.moveaxis(kernel.reshape(taps, cin, cout), 0, 1).reshape(cin, taps * cout)
    z = _contract_channels(xp, w, precision)
    z = z.reshape(*z.shape[:-1], taps, cout)
    y = None
    for t, o in enumerate(_offsets(window)):
        term = _shift(z, o, spatial)[..., t, :]
        y = term if y is None else y + term
    return y


def conv_patches(x: Array, kernel: Array, precision: PrecisionLike = None) -> Array:
    """``lax.conv_general_dilated_patches`` (itself a conv with a one-hot kernel), then a matmul."""
    window, cout = kernel.shape[:-2], kernel.shape[-1]
    rank = len(window)
    patches = lax.conv_general_dilated_patches(
        x, window, (1,) * rank, 'SAME', dimension_numbers=_dimension_numbers(rank),
        precision=precision)
    # Patch channels are ordered (in, *window).
    w = jnp.moveaxis(kernel, -2, 0).reshape(-1, cout)
    return _contract_channels(patches, w, precision)


#: impl name -> function ``(x [B, *S, in], kernel [*window, in, out], precision) -> y [B, *S, out]``
#: computing the stride-1 'SAME' convolution (see the module docstring for which is fastest).
CONV_IMPLS: dict[str, Callable[..., Array]] = {
    'xla': conv_xla,
    'xla_nchw': conv_xla_nchw,
    'im2col': conv_im2col,
    'shifted_sum': conv_shifted_sum,
    'output_shift': conv_output_shift,
    'patches': conv_patches,
}

class PatchConv(nn.Module):
    """Stride-1 'SAME' convolution with ``nn.Conv``'s fields and parameters, computed by ``impl``.

    A drop-in for ``nn.Conv(features, kernel_size, padding='SAME', ...)``: the parameters are
    'kernel' ``[*kernel_size, in, features]`` and 'bias' ``[features]`` (same names, shapes,
    initializers and dtype promotion), inputs are ``[*batch, *spatial, in]`` with any number of
    batch axes (none included) and any spatial rank (``len(kernel_size)``), and the result is the
    same up to float rounding. ``nn.SpectralNorm`` wraps it as it wraps ``nn.Conv`` (it normalizes
    every >= 2-D parameter through ``nn.map_variables``, whatever the module).

    Attributes:
      features: output channels.
      kernel_size: the window; an int is a 1-D window, as in ``nn.Conv``.
      padding: only 'SAME' (accepted so that ``nn.Conv``'s call sites need no change).
      use_bias: add a bias.
      dtype: computation dtype (None: inferred from the input and parameters).
      param_dtype: parameter dtype.
      precision: ``lax.Precision`` of the conv / matmuls.
      kernel_init: kernel initializer.
      bias_init: bias initializer.
      impl: a key of :data:`CONV_IMPLS`.
    """

    features: int
    kernel_size: int | Sequence[int]
    padding: str = 'SAME'
    use_bias: bool = True
    dtype: Optional[Dtype] = None
    param_dtype: Dtype = jnp.float32
    precision: PrecisionLike = None
    kernel_init: Initializer = nn.linear.default_kernel_init
    bias_init: Initializer = nn.initializers.zeros_init()
    impl: str = 'xla'

    @nn.compact
    def __call__(self, inputs: Array) -> Array:
        """Args: inputs ``[*batch, *spatial, in]``. Returns: ``[*batch, *spatial, features]``."""
        if isinstance(self.kernel_size, int):
            window = (self.kernel_size,)
        else:
            window = tuple(self.kernel_size)
        try:
            fn = CONV_IMPLS[self.impl]
        except KeyError:
            raise ValueError(f'unknown conv impl {self.impl!r}; choose one of '
                             f'{sorted(CONV_IMPLS)}') from None
        if not isinstance(self.padding, str) or self.padding.upper() != 'SAME':
            raise ValueError(f"{type(self).__name__} computes stride-1 'SAME' convolutions only, "
                             f'got padding={self.padding!r}')
        rank = len(window)
        num_batch = inputs.ndim - rank - 1
        if num_batch < 0:
            raise ValueError(f'{type(self).__name__} with a {rank}-D window needs inputs '
                             f'[*batch, *spatial({rank}), features], got shape {inputs.shape}')
        batch_shape = inputs.shape[:num_batch]
        if num_batch != 1:
            inputs = inputs.reshape((-1,) + inputs.shape[num_batch:])
        kernel = self.param('kernel', self.kernel_init, window + (inputs.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = fn(inputs, kernel, self.precision)
        if bias is not None:
            y = y + bias
        if num_batch != 1:
            y = y.reshape(batch_shape + y.shape[1:])
        return y
