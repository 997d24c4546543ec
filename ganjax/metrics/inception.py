"""InceptionV3 in Flax, laid out as the network behind FID, with weights from a local file.

The architecture is Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for
Computer Vision") in the variant that FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale
Update Rule Converge to a Local Nash Equilibrium") is defined with: TensorFlow's 2015-12-05
Inception graph, as ported to PyTorch by the `pytorch-fid` package (torchvision's Inception3 with
the blocks `FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1` and `FIDInceptionE_2`: average
pools that leave the zero padding out of the average, a max pool in the last block's pool branch,
and 1008 logits). Its 2048 "pool3" features are the ones FID, KID and precision/recall compare,
its logits the ones of the Inception Score.

Nothing is downloaded. Convert pytorch-fid's weights once (torch is needed for this step only)::

    python -m ganjax.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth

which writes `default_weights_path()`; then `features, logits, info = load_inception()`.

Numbers equal those of pytorch-fid (and of TF's FID) only with those weights: with any other
weights this is merely an Inception-v3 shaped network. Images are resized to 299x299 as
pytorch-fid does (bilinear, half-pixel centres, no antialiasing when shrinking). The original TF
FID code resized inside its graph with TensorFlow's older bilinear resize, which samples at
slightly different positions; that moves FID a little, so compare only FIDs computed the same way.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, DataError

#: Side of the square images the network sees; FID is defined at 299.
INPUT_SIZE = 299
#: The smallest input_size the network's strides and valid convolutions leave a 1x1 map for.
MIN_INPUT_SIZE = 75
#: Width of the pool3 features.
FEATURE_DIM = 2048
#: Logits of the 2015-12-05 graph: 1000 ImageNet classes plus 8 unused ones.
NUM_LOGITS = 1008
#: Environment variable with the path of the converted weights.
WEIGHTS_ENV = 'GANJAX_INCEPTION_WEIGHTS'
#: pytorch-fid's weights, the input of `convert_inception`.
PYTORCH_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                       'pt_inception-2015-12-05-6726825d.pth')

_Pad = tuple[int, int]


def default_weights_path() -> str:
    """Where the converted weights are looked for when no path is given.

    Returns:
      $GANJAX_INCEPTION_WEIGHTS if set, else ~/.cache/ganjax/fid_inception_v3.npz.
    """
    return os.environ.get(WEIGHTS_ENV) or os.path.join(
        os.path.expanduser('~'), '.cache', 'ganjax', 'fid_inception_v3.npz')


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    # F.interpolate(mode='bilinear', align_corners=False): output i samples the input at
    # (i + 0.5) * n_in / n_out - 0.5, clamped at 0, from its two neighbours (the right one clamped
    # at the edge). Shrinking does the same with no antialiasing, so it is not jax.image.resize.
    # Rounded as PyTorch's compiled kernel rounds: float32 ratio, one fused multiply-add (exact in
    # float64, then rounded once); float64 coordinates would move pixels by up to 1e-4.
    f32 = np.float32
    scale = np.float64(f32(n_in) / f32(n_out))
    src = (scale * (np.arange(n_out) + 0.5) - 0.5).astype(f32)
    src = np.maximum(src, f32(0.0))
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = np.clip(src - lo.astype(f32), f32(0.0), f32(1.0))
    m = np.zeros((n_out, n_in), f32)
    np.add.at(m, (np.arange(n_out), lo), f32(1.0) - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def prepare_images(x: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
    """Brings images to the network's input: float32 in [-1, 1], 3 channels, size x size.

    The same as pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) does to images
    in [0, 1]; the resize is linear and keeps constants, so resizing [-1, 1] images is the same.

    Args:
      x: images [B, H, W, C], uint8 in [0, 255] or float in [-1, 1], with C 1 (grey) or 3.
      size: side of the output.

    Returns:
      float32 [B, size, size, 3].

    Raises:
      DataError: for another rank or channel count.
    """
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f'Inception needs images [B, H, W, C] with C = 1 or 3 channels, got shape '
                        f'{tuple(x.shape)}')
    # uint8 pixels are accepted as they are stored; other data must already be in [-1, 1].
    x = Scaling.image(8).to_model(x) if x.dtype == jnp.uint8 else x.astype(jnp.float32)
    height, width = x.shape[1:3]
    # A matrix product per axis: exact PyTorch weights, and HIGHEST so that GPUs and TPUs do not
    # round the pixels to bf16/tf32 before the network sees them.
    if height != size:
        x = jnp.einsum('oh,bhwc->bowc', _resize_matrix(height, size), x,
                       precision=jax.lax.Precision.HIGHEST)
    if width != size:
        x = jnp.einsum('ow,bhwc->bhoc', _resize_matrix(width, size), x,
                       precision=jax.lax.Precision.HIGHEST)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return x


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm with the stored statistics (eps 1e-3), ReLU.

    Attributes:
      features: output channels.
      kernel_size: (height, width) of the kernel.
      strides: stride on both axes.
      padding: zero padding (height, width) on each side.
      dtype: computation dtype.
      precision: precision of the convolution (None: the backend's default).
    """

    features: int
    kernel_size: tuple[int, int] = (1, 1)
    strides: int = 1
    padding: _Pad = (0, 0)
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C_in]. Returns: [B, H', W', features]."""
        (ph, pw) = self.padding
        x = nn.Conv(self.features, self.kernel_size, (self.strides, self.strides),
                    padding=((ph, ph), (pw, pw)), use_bias=False, dtype=self.dtype,
                    precision=self.precision, name='conv')(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, dtype=self.dtype, name='bn')(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    # TF's average pool, unlike torchvision's, leaves the zero padding out of the average.
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


class _Block(nn.Module):
    """Shared attributes of the mixed blocks; `conv` makes a BasicConv2d with them."""

    dtype: Any = jnp.float32
    precision: Any = None

    def conv(self, features: int, kernel_size: _Pad, name: str, strides: int = 1,
             padding: _Pad = (0, 0)) -> BasicConv2d:
        return BasicConv2d(features, kernel_size, strides, padding, self.dtype, self.precision,
                           name=name)


class InceptionA(_Block):
    """Mixed_5b-5d (pytorch-fid's FIDInceptionA): 1x1, 5x5, double 3x3 and pool branches.

    Attributes:
      pool_features: output channels of the pool branch.
    """

    pool_features: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C]. Returns: [B, H, W, 224 + pool_features]."""
        b1 = self.conv(64, (1, 1), 'branch1x1')(x)
        b5 = self.conv(48, (1, 1), 'branch5x5_1')(x)
        b5 = self.conv(64, (5, 5), 'branch5x5_2', padding=(2, 2))(b5)
        b3 = self.conv(64, (1, 1), 'branch3x3dbl_1')(x)
        b3 = self.conv(96, (3, 3), 'branch3x3dbl_2', padding=(1, 1))(b3)
        b3 = self.conv(96, (3, 3), 'branch3x3dbl_3', padding=(1, 1))(b3)
        bp = self.conv(self.pool_features, (1, 1), 'branch_pool')(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
    """Mixed_6a: the grid reduction 35x35 -> 17x17 (stride-2 3x3, double 3x3 and max pool)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C]. Returns: [B, (H - 3) // 2 + 1, ..., 480 + C]."""
        b3 = self.conv(384, (3, 3), 'branch3x3', strides=2)(x)
        bd = self.conv(64, (1, 1), 'branch3x3dbl_1')(x)
        bd = self.conv(96, (3, 3), 'branch3x3dbl_2', padding=(1, 1))(bd)
        bd = self.conv(96, (3, 3), 'branch3x3dbl_3', strides=2)(bd)
        bp = nn.max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([b3, bd, bp], axis=-1)


class InceptionC(_Block):
    """Mixed_6b-6e (pytorch-fid's FIDInceptionC): factorised 7x7 branches.

    Attributes:
      channels_7x7: width inside the 7x7 branches.
    """

    channels_7x7: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C]. Returns: [B, H, W, 768]."""
        c7 = self.channels_7x7
        b1 = self.conv(192, (1, 1), 'branch1x1')(x)
        b7 = self.conv(c7, (1, 1), 'branch7x7_1')(x)
        b7 = self.conv(c7, (1, 7), 'branch7x7_2', padding=(0, 3))(b7)
        b7 = self.conv(192, (7, 1), 'branch7x7_3', padding=(3, 0))(b7)
        bd = self.conv(c7, (1, 1), 'branch7x7dbl_1')(x)
        bd = self.conv(c7, (7, 1), 'branch7x7dbl_2', padding=(3, 0))(bd)
        bd = self.conv(c7, (1, 7), 'branch7x7dbl_3', padding=(0, 3))(bd)
        bd = self.conv(c7, (7, 1), 'branch7x7dbl_4', padding=(3, 0))(bd)
        bd = self.conv(192, (1, 7), 'branch7x7dbl_5', padding=(0, 3))(bd)
        bp = self.conv(192, (1, 1), 'branch_pool')(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
    """Mixed_7a: the grid reduction 17x17 -> 8x8."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C]. Returns: [B, (H - 3) // 2 + 1, ..., 512 + C]."""
        b3 = self.conv(192, (1, 1), 'branch3x3_1')(x)
        b3 = self.conv(320, (3, 3), 'branch3x3_2', strides=2)(b3)
        b7 = self.conv(192, (1, 1), 'branch7x7x3_1')(x)
        b7 = self.conv(192, (1, 7), 'branch7x7x3_2', padding=(0, 3))(b7)
        b7 = self.conv(192, (7, 1), 'branch7x7x3_3', padding=(3, 0))(b7)
        b7 = self.conv(192, (3, 3), 'branch7x7x3_4', strides=2)(b7)
        bp = nn.max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([b3, b7, bp], axis=-1)


class InceptionE(_Block):
    """Mixed_7b / Mixed_7c (pytorch-fid's FIDInceptionE_1 / FIDInceptionE_2): 3x3 branches that
    split into parallel 1x3 and 3x1 convolutions.

    Attributes:
      max_pool: the pool branch max-pools (Mixed_7c of the TF graph, most likely a slip there
        that FID has kept ever since) instead of average-pooling without the padding (Mixed_7b).
    """

    max_pool: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C]. Returns: [B, H, W, 2048]."""
        b1 = self.conv(320, (1, 1), 'branch1x1')(x)
        b3 = self.conv(384, (1, 1), 'branch3x3_1')(x)
        b3 = jnp.concatenate([self.conv(384, (1, 3), 'branch3x3_2a', padding=(0, 1))(b3),
                              self.conv(384, (3, 1), 'branch3x3_2b', padding=(1, 0))(b3)], -1)
        bd = self.conv(448, (1, 1), 'branch3x3dbl_1')(x)
        bd = self.conv(384, (3, 3), 'branch3x3dbl_2', padding=(1, 1))(bd)
        bd = jnp.concatenate([self.conv(384, (1, 3), 'branch3x3dbl_3a', padding=(0, 1))(bd),
                              self.conv(384, (3, 1), 'branch3x3dbl_3b', padding=(1, 0))(bd)], -1)
        if self.max_pool:
            pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_3x3(x)
        bp = self.conv(192, (1, 1), 'branch_pool')(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """The FID Inception-v3 (NHWC), inference only: batch norm uses the stored statistics.

    Variables: {'params': ..., 'batch_stats': ...}, named as the PyTorch modules are
    (`Mixed_6b/branch7x7_2/conv/kernel` is `Mixed_6b.branch7x7_2.conv.weight`).

    Attributes:
      input_size: images are resized to input_size x input_size (299 for FID; at least 75).
      dtype: computation dtype (bfloat16 is faster on accelerators, but then the features are no
        longer those of FID to float32 accuracy); parameters stay float32.
      precision: precision of the convolutions and the fc layer (None: the backend's default).
    """

    input_size: int = INPUT_SIZE
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Runs the network.

        Args:
          x: images [B, H, W, C], uint8 in [0, 255] or float in [-1, 1], C = 1 or 3.

        Returns:
          (pool3 features [B, 2048], logits [B, 1008]), both float32.

        Raises:
          DataError: for another rank or channel count.
          ValueError: for input_size < 75.
        """
        if self.input_size < MIN_INPUT_SIZE:
            raise ValueError(f'InceptionV3 input_size must be at least {MIN_INPUT_SIZE}, got '
                             f'{self.input_size}')
        x = prepare_images(x, self.input_size).astype(self.dtype)
        kw = {'dtype': self.dtype, 'precision': self.precision}
        x = BasicConv2d(32, (3, 3), 2, **kw, name='Conv2d_1a_3x3')(x)
        x = BasicConv2d(32, (3, 3), **kw, name='Conv2d_2a_3x3')(x)
        x = BasicConv2d(64, (3, 3), padding=(1, 1), **kw, name='Conv2d_2b_3x3')(x)
        x = nn.max_pool(x, (3, 3), (2, 2))
        x = BasicConv2d(80, (1, 1), **kw, name='Conv2d_3b_1x1')(x)
        x = BasicConv2d(192, (3, 3), **kw, name='Conv2d_4a_3x3')(x)
        x = nn.max_pool(x, (3, 3), (2, 2))
        x = InceptionA(**kw, pool_features=32, name='Mixed_5b')(x)
        x = InceptionA(**kw, pool_features=64, name='Mixed_5c')(x)
        x = InceptionA(**kw, pool_features=64, name='Mixed_5d')(x)
        x = InceptionB(**kw, name='Mixed_6a')(x)
        x = InceptionC(**kw, channels_7x7=128, name='Mixed_6b')(x)
        x = InceptionC(**kw, channels_7x7=160, name='Mixed_6c')(x)
        x = InceptionC(**kw, channels_7x7=160, name='Mixed_6d')(x)
        x = InceptionC(**kw, channels_7x7=192, name='Mixed_6e')(x)
        x = InceptionD(**kw, name='Mixed_7a')(x)
        x = InceptionE(**kw, max_pool=False, name='Mixed_7b')(x)
        x = InceptionE(**kw, max_pool=True, name='Mixed_7c')(x)
        # The mean over 8x8 positions in float32 whatever the dtype: these are the FID features.
        pool3 = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        logits = nn.Dense(NUM_LOGITS, dtype=self.dtype, precision=self.precision,
                          name='fc')(pool3.astype(self.dtype))
        return pool3, logits.astype(jnp.float32)


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[str, tuple[int, ...]]:
    # Shapes only (eval_shape): no memory, no compilation; the variables do not depend on the
    # input size.
    shapes = jax.eval_shape(
        lambda: InceptionV3(MIN_INPUT_SIZE).init(
            jax.random.PRNGKey(0), jnp.zeros((1, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3))))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes, sep='/').items()}


def _torch_name(key: str) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """The PyTorch state-dict name of a flat Flax variable name, and the map of its layout."""
    collection, *modules, leaf = key.split('/')
    prefix = '.'.join(modules)
    if collection == 'batch_stats':
        return f'{prefix}.running_{leaf}', lambda a: a
    if leaf == 'kernel' and modules[-1] == 'conv':
        return f'{prefix}.weight', lambda a: a.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if leaf == 'kernel':
        return f'{prefix}.weight', lambda a: a.T  # Linear: [out, in] -> [in, out]
    return f'{prefix}.{"weight" if leaf == "scale" else leaf}', lambda a: a


def _torch_shape(key: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if key.endswith('conv/kernel'):
        return (shape[3], shape[2], shape[0], shape[1])
    if key.endswith('kernel'):
        return shape[::-1]
    return shape


def _listing(names: list[str], limit: int = 8) -> str:
    more = f' and {len(names) - limit} more' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def convert_torch_state_dict(state: Mapping[str, Any]) -> dict:
    """Maps pytorch-fid's Inception state dict to this module's Flax variables.

    Args:
      state: name -> array (numpy or CPU torch tensors) as `torch.load` of
        pt_inception-2015-12-05-6726825d.pth gives it; `num_batches_tracked` entries are ignored.

    Returns:
      {'params': ..., 'batch_stats': ...} of float32 numpy arrays.

    Raises:
      ConfigError: naming every missing, unexpected and wrongly shaped key.
    """
    state = {k: np.asarray(v) for k, v in state.items() if not k.endswith('num_batches_tracked')}
    flat, missing, wrong = {}, [], []
    used = set()
    # In the order of the PyTorch names, so that a message lists a module's tensors together.
    for key, shape in sorted(_expected_shapes().items(), key=lambda kv: _torch_name(kv[0])[0]):
        name, to_flax = _torch_name(key)
        if name not in state:
            missing.append(name)
            continue
        used.add(name)
        want = _torch_shape(key, shape)
        if state[name].shape != want:
            wrong.append(f'{name} {state[name].shape} (expected {want})')
            continue
        flat[key] = np.ascontiguousarray(to_flax(state[name]), dtype=np.float32)
    unexpected = sorted(set(state) - used)
    if missing or wrong or unexpected:
        parts = [f'{label}: {_listing(names)}' for label, names in
                 (('missing', missing), ('wrong shape', wrong), ('unexpected', unexpected))
                 if names]
        hint = ''
        if any(k.startswith('AuxLogits') for k in state) or state.get(
                'fc.weight', np.zeros((0,))).shape[:1] == (1000,):
            hint = (' (these look like torchvision\'s ImageNet Inception weights; FID needs '
                    f'pytorch-fid\'s {PYTORCH_WEIGHTS_URL})')
        raise ConfigError('the state dict is not that of the FID Inception network'
                          f'{hint}: ' + '; '.join(parts))
    return traverse_util.unflatten_dict(flat, sep='/')


def save_weights(variables: Mapping[str, Any], path: str) -> None:
    """Writes the variables to a plain .npz file (no pickle), atomically.

    Args:
      variables: {'params': ..., 'batch_stats': ...} as `convert_torch_state_dict` returns.
      path: the file to write; its folder is created.
    """
    flat = traverse_util.flatten_dict(jax.device_get(dict(variables)), sep='/')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    # A file object, not a name: np.savez would append '.npz' to the temporary name.
    with open(tmp, 'wb') as f:
        np.savez(f, **{k: np.asarray(v, np.float32) for k, v in flat.items()})
    os.replace(tmp, path)


def _missing_message(path: str) -> str:
    return (f'no Inception weights at {path}. Download pytorch-fid\'s weights from '
            f'{PYTORCH_WEIGHTS_URL} and convert them (needs torch, this once): '
            f'`python -m ganjax.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth '
            f'--out {path}`; or point ${WEIGHTS_ENV} at a converted file')


def load_weights(path: str) -> dict:
    """Reads variables written by `save_weights` and checks them against the network.

    Args:
      path: an .npz file.

    Returns:
      {'params': ..., 'batch_stats': ...} of float32 numpy arrays.

    Raises:
      ConfigError: the file is missing or unreadable, or its names or shapes are not the
        network's (the message names the first offending keys).
    """
    if not os.path.isfile(path):
        raise ConfigError(_missing_message(path))
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:  # zipfile.BadZipFile is an OSError
        raise ConfigError(f'{path} is not an Inception weights file written by save_weights: '
                          f'{e}') from e
    expected = _expected_shapes()
    missing = [k for k in expected if k not in flat]
    unexpected = sorted(set(flat) - set(expected))
    wrong = [f'{k} {flat[k].shape} (expected {s})' for k, s in expected.items()
             if k in flat and flat[k].shape != s]
    if missing or unexpected or wrong:
        parts = [f'{label}: {_listing(names, 5)}' for label, names in
                 (('missing', missing), ('wrong shape', wrong), ('unexpected', unexpected))
                 if names]
        raise ConfigError(f'{path} does not hold the FID Inception weights ('
                          + '; '.join(parts) + '); convert them again with '
                          '`python -m ganjax.metrics.convert_inception`')
    return traverse_util.unflatten_dict({k: v.astype(np.float32) for k, v in flat.items()},
                                        sep='/')


def count_params(variables: Mapping[str, Any]) -> int:
    """Number of trained parameters (the 'params' collection, not the batch-norm statistics).

    Args:
      variables: {'params': ..., 'batch_stats': ...}.

    Returns:
      The total number of elements of the params.
    """
    return int(sum(np.size(v) for v in jax.tree_util.tree_leaves(variables['params'])))


def _output(model: InceptionV3, index: int, variables: Any, x: jax.Array) -> jax.Array:
    return model.apply(variables, x)[index]


def load_inception(path: str = '', *, input_size: int = INPUT_SIZE, dtype: Any = jnp.float32,
                   precision: Any = None
                   ) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array],
                              dict]:
    """Loads converted FID Inception weights as two pure functions of a batch of images.

    The functions are `jax.tree_util.Partial`s: callables that are also pytrees whose leaves are
    the weights. Passed as an argument of a jitted function (`jax.jit(step)(features, x)`), the
    weights are inputs of the compiled program; called from a jitted function that merely closes
    over them, XLA embeds the 95 MB of weights as constants, which compiles about twice as slowly
    and writes ~90 MB into a persistent compilation cache for every input shape.

    Args:
      path: the .npz written by convert_inception ('' = `default_weights_path()`).
      input_size: side the images are resized to (299 for FID).
      dtype: computation dtype (see InceptionV3).
      precision: convolution precision (see InceptionV3).

    Returns:
      (features(x) -> pool3 [B, 2048], logits(x) -> [B, 1008], info), where x is [B, H, W, C]
      uint8 in [0, 255] or float in [-1, 1] with C = 1 or 3 and the outputs are float32. info:
      path, num_params, input_size, feature_dim, num_logits.

    Raises:
      ConfigError: no file at the path (the message says how to make one) or a bad file.
    """
    path = path or default_weights_path()
    variables = jax.device_put(load_weights(path))
    model = InceptionV3(input_size=input_size, dtype=dtype, precision=precision)
    features = jax.tree_util.Partial(functools.partial(_output, model, 0), variables)
    logits = jax.tree_util.Partial(functools.partial(_output, model, 1), variables)
    info = {'path': path, 'num_params': count_params(variables), 'input_size': input_size,
            'feature_dim': FEATURE_DIM, 'num_logits': NUM_LOGITS}
    return features, logits, info
