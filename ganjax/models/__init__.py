"""Generator / discriminator pairs, looked up by name.

``build_models(config.model, data_shape, num_classes)`` returns ``(G, D)``: Flax Linen modules
called as ``G.apply(vars, z, y, train=...)`` (z ``[B, latent_dim]`` -> x ``[B, *data_shape]``,
float32) and ``D.apply(vars, x, y, train=...)`` (-> ``{'logit': [B], 'features': [B, F]}`` and,
for the class heads, ``'class_logits': [B, K]``, all float32). The labels ``y`` (int ``[B]``) are
optional: unconditional models ignore them; a class-conditional G reads them through conditional
normalization or a one-hot code (``model.g_conditioning``), a projection D through its
projection term (``model.d_head``; see :func:`ganjax.models.layers.logit_head`). All mutable
state (BatchNorm statistics, spectral-norm vectors) is in the 'batch_stats' collection.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn

from ganjax import default_config
from ganjax.errors import ConfigError, lookup
from ganjax.models import layers
from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_plan
from ganjax.models.layers import UPSAMPLE, depth_to_space, space_to_depth
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator
from ganjax.models.resnet import ResNetDiscriminator, ResNetGenerator, resnet_base_shape
from ganjax.models.resnet1d import ResNet1DDiscriminator, ResNet1DGenerator
from ganjax.models import resnet1d

def model_defaults() -> dict[str, Any]:
    """The `model` section of ganjax/default_config.py, the one place where defaults are set.

    Returns:
      A fresh dict of key -> default value.
    """
    return default_config.get_config().model.to_dict()


#: Number of x2 up-blocks of the ResNet generator (SNGAN's CIFAR-10 model: 4 -> 32).
RESNET_UP_BLOCKS = 3


def _options(config: Any, data_shape: Any) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Reads and checks the model options shared by every architecture."""
    get = config.get if hasattr(config, 'get') else (lambda k, d: getattr(config, k, d))
    o = {k: get(k, v) for k, v in model_defaults().items()}
    for key in ('latent_dim', 'g_features', 'd_features', 'mlp_layers'):
        if not isinstance(o[key], int) or isinstance(o[key], bool) or o[key] < 1:
            raise ConfigError(f'model.{key} must be a positive integer, got {o[key]!r}')
    for key in ('g_spectral_norm', 'd_spectral_norm', 'g_residual'):
        if not isinstance(o[key], bool):
            raise ConfigError(f'model.{key} must be True or False, got {o[key]!r}')
    for key in ('g_widths', 'd_widths'):
        widths = o[key]
        if not isinstance(widths, (tuple, list)) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
            raise ConfigError(f'model.{key} must be a tuple of positive integers (() = '
                              f'model.mlp_layers layers of the base width), got {widths!r}')
        o[key] = tuple(widths)
    if isinstance(o['library_size'], bool) or not isinstance(o['library_size'], (int, float)) or (
            o['library_size'] < 0):
        raise ConfigError(f'model.library_size must be a number >= 0, got {o["library_size"]!r}')
    if o['output_activation'] == 'library_size' and not o['library_size'] > 0:
        raise ConfigError("model.output_activation='library_size' needs model.library_size > 0: "
                          'the counts per cell of the data (data.target_sum with '
                          "data.preprocess='library')")
    o['library_size'] = float(o['library_size'])
    layers.check_choice(o['upsample'], UPSAMPLE, 'model.upsample')
    layers.check_choice(o['g_norm'], layers.NORMS, 'model.g_norm')
    layers.check_choice(o['d_norm'], layers.NORMS, 'model.d_norm')
    layers.check_choice(o['output_activation'], layers.OUTPUT_ACTIVATIONS,
                        'model.output_activation')
    layers.check_choice(o['g_conditioning'], layers.G_CONDITIONING, 'model.g_conditioning')
    layers.check_choice(o['d_head'], D_HEADS, 'model.d_head')
    # The computation dtype comes from the run's `precision` (see ganjax.train_step.build_gan).
    o['dtype'] = layers.resolve_dtype(get('dtype', 'float32'), 'model.dtype')
    o['param_dtype'] = layers.resolve_dtype(o['param_dtype'], 'model.param_dtype')
    try:
        shape = tuple(int(s) for s in data_shape)
    except TypeError as e:
        raise ConfigError(f'data_shape must be a tuple of ints, got {data_shape!r}') from e
    if not shape or any(s < 1 for s in shape):
        raise ConfigError(f'data_shape must be a non-empty tuple of positive sizes, got {shape}')
    return o, shape


#: Values of ``model.d_head``: 'auto' is 'projection' for a class-conditional pair, else 'logit'.
D_HEADS = ('auto',) + layers.D_HEADS


def class_split(d_head: str, num_classes: int) -> tuple[int, int, str]:
    """Which classes G and D see, for a head and the classes a pair is built over.

    Args:
      d_head: a value of :data:`D_HEADS`.
      num_classes: the classes the pair is built over (0 = unconditional).

    Returns:
      ``(G's classes, D's classes, D's head)``. A 'kplus1' D classifies while G stays
      unconditional; 'projection' and 'acgan' make a class-conditional pair.

    Raises:
      ConfigError: for a head and class count that do not fit together.
    """
    head = layers.check_choice(d_head, D_HEADS, 'model.d_head')
    if head == 'auto':
        head = 'projection' if num_classes else 'logit'
    if head == 'logit':
        if num_classes:
            raise ConfigError("a class-conditional generator needs a discriminator that sees the "
                              "labels: model.d_head='projection' or 'acgan', not 'logit'")
        return 0, 0, head
    if num_classes < 1:
        raise ConfigError(f'model.d_head={head!r} needs labelled data (num_classes > 0)')
    if head == 'kplus1':
        return 0, num_classes, head
    return num_classes, num_classes, head


def build_mlp(config: Any, data_shape: tuple[int, ...],
              num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Builds the MLP pair (any data shape; hidden width g_features / d_features).

    Args:
      config: ``config.model`` (ConfigDict or mapping).
      data_shape: shape of one example.
      num_classes: the classes of a class-conditional pair or a classifying D (see
        :func:`class_split`); 0 for an unconditional pair.

    Returns:
      ``(MLPGenerator, MLPDiscriminator)``.
    """
    o, shape = _options(config, data_shape)
    g_classes, d_classes, head = class_split(o['d_head'], num_classes)
    common = dict(num_layers=o['mlp_layers'], dtype=o['dtype'], param_dtype=o['param_dtype'])
    g = MLPGenerator(shape, latent_dim=o['latent_dim'], features=o['g_features'],
                     widths=o['g_widths'], residual=o['g_residual'],
                     norm=o['g_norm'], spectral_norm=o['g_spectral_norm'],
                     output_activation=o['output_activation'], num_classes=g_classes,
                     conditioning=o['g_conditioning'], library_size=o['library_size'], **common)
    d = MLPDiscriminator(features=o['d_features'], widths=o['d_widths'], norm=o['d_norm'],
                         spectral_norm=o['d_spectral_norm'], num_classes=d_classes, head=head,
                         **common)
    return g, d


def build_dcgan(config: Any, data_shape: tuple[int, ...],
                num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Builds the DCGAN pair for ``[*spatial, channels]`` data (images, 1D sequences).

    Args:
      config: ``config.model`` (ConfigDict or mapping).
      data_shape: shape of one example; spatial sizes must allow one x2 stage
        (see :func:`ganjax.models.dcgan.dcgan_plan`).
      num_classes: the classes of a class-conditional pair or a classifying D (see
        :func:`class_split`); 0 for an unconditional pair.

    Returns:
      ``(DCGANGenerator, DCGANDiscriminator)``.

    Raises:
      ConfigError: a vector data shape or spatial sizes DCGAN cannot produce.
    """
    o, shape = _options(config, data_shape)
    if len(shape) < 2:
        raise ConfigError(f'arch="dcgan" needs data of shape [*spatial, channels] (e.g. '
                          f'(28, 28, 1) or a sequence (128, 4)); got the vector shape {shape}. '
                          'Use arch="mlp" for vectors.')
    _, n = dcgan_plan(shape[:-1])
    g_classes, d_classes, head = class_split(o['d_head'], num_classes)
    g = DCGANGenerator(shape, latent_dim=o['latent_dim'], features=o['g_features'],
                       upsample=o['upsample'], norm=o['g_norm'],
                       spectral_norm=o['g_spectral_norm'],
                       output_activation=o['output_activation'], dtype=o['dtype'],
                       param_dtype=o['param_dtype'], num_classes=g_classes,
                       conditioning=o['g_conditioning'])
    d = DCGANDiscriminator(features=o['d_features'], num_stages=n, downsample=o['downsample'],
                           norm=o['d_norm'],
                           spectral_norm=o['d_spectral_norm'], dtype=o['dtype'],
                           param_dtype=o['param_dtype'], num_classes=d_classes, head=head)
    return g, d


def build_resnet(config: Any, data_shape: tuple[int, ...],
                 num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Builds the SNGAN-style ResNet pair (spatial sizes divisible by 8).

    Args:
      config: ``config.model`` (ConfigDict or mapping).
      data_shape: shape of one example ``[*spatial, channels]``.
      num_classes: the classes of a class-conditional pair or a classifying D (see
        :func:`class_split`); 0 for an unconditional pair.

    Returns:
      ``(ResNetGenerator, ResNetDiscriminator)``.

    Raises:
      ConfigError: a vector data shape or spatial sizes not divisible by 8.
    """
    o, shape = _options(config, data_shape)
    if len(shape) < 2:
        raise ConfigError(f'arch="resnet" needs data of shape [*spatial, channels] (e.g. '
                          f'(32, 32, 3)); got the vector shape {shape}. Use arch="mlp" for '
                          'vectors.')
    resnet_base_shape(shape[:-1], RESNET_UP_BLOCKS)
    g_classes, d_classes, head = class_split(o['d_head'], num_classes)
    g = ResNetGenerator(shape, latent_dim=o['latent_dim'], features=o['g_features'],
                        num_blocks=RESNET_UP_BLOCKS, upsample=o['upsample'], norm=o['g_norm'],
                        spectral_norm=o['g_spectral_norm'],
                        output_activation=o['output_activation'], dtype=o['dtype'],
                        param_dtype=o['param_dtype'], num_classes=g_classes,
                        conditioning=o['g_conditioning'])
    d = ResNetDiscriminator(features=o['d_features'], norm=o['d_norm'],
                            spectral_norm=o['d_spectral_norm'], dtype=o['dtype'],
                            param_dtype=o['param_dtype'], num_classes=d_classes, head=head)
    return g, d


def build_resnet1d(config: Any, data_shape: tuple[int, ...],
                   num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Builds the 1D residual pair of the DNA GANs (Killoran et al. 2017, FBGAN) for [L, 4] data.

    Args:
      config: ``config.model``: g_features / d_features (channels), res_blocks, kernel_size,
        res_scale, seq_output, temperature, g_norm / d_norm, spectral norm, conditioning.
      data_shape: ``(length, alphabet)``.
      num_classes: the classes of a class-conditional pair (see :func:`class_split`).

    Returns:
      ``(ResNet1DGenerator, ResNet1DDiscriminator)``.

    Raises:
      ConfigError: a data shape that is not [length, alphabet], or a bad option.
    """
    o, shape = _options(config, data_shape)
    resnet1d.check_options(o, shape)
    g_classes, d_classes, head = class_split(o['d_head'], num_classes)
    blocks = dict(num_blocks=o['res_blocks'], kernel_size=o['kernel_size'],
                  res_scale=float(o['res_scale']), dtype=o['dtype'],
                  param_dtype=o['param_dtype'])
    g = ResNet1DGenerator(shape, latent_dim=o['latent_dim'], features=o['g_features'],
                          output=o['seq_output'], temperature=float(o['temperature']),
                          norm=o['g_norm'], spectral_norm=o['g_spectral_norm'],
                          num_classes=g_classes, conditioning=o['g_conditioning'], **blocks)
    d = ResNet1DDiscriminator(features=o['d_features'], norm=o['d_norm'],
                              spectral_norm=o['d_spectral_norm'], num_classes=d_classes,
                              head=head, **blocks)
    return g, d


#: Architecture name -> builder(model_config, data_shape, num_classes) -> (generator,
#: discriminator).
ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {
    'mlp': build_mlp,
    'dcgan': build_dcgan,
    'resnet': build_resnet,
    'resnet1d': build_resnet1d,
}

#: Small widths per architecture, for tests and smoke runs (compile in seconds on CPU). Merge into
#: ``config.model`` (``config.model.update(TINY_MODEL_OVERRIDES[arch])``).
TINY_MODEL_OVERRIDES: dict[str, dict[str, Any]] = {
    'mlp': dict(latent_dim=8, g_features=16, d_features=16, mlp_layers=2),
    'dcgan': dict(latent_dim=8, g_features=4, d_features=4),
    'resnet': dict(latent_dim=8, g_features=8, d_features=8),
    'resnet1d': dict(latent_dim=8, g_features=8, d_features=8, res_blocks=1, kernel_size=3),
}


def build_models(config: Any, data_shape: tuple[int, ...],
                 num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """Builds the (generator, discriminator) pair named by ``config.arch``.

    Args:
      config: ``config.model`` (ConfigDict or mapping; missing keys take :func:`model_defaults`).
      data_shape: shape of one example, e.g. ``(28, 28, 1)``, ``(2,)``, ``(128, 4)``.
      num_classes: > 0 builds a class-conditional pair (or, with ``d_head='kplus1'``, an
        unconditional G and a K+1-class D) over that many classes.

    Returns:
      ``(G, D)`` module instances.

    Raises:
      ConfigError: unknown architecture, bad option, or a data shape the architecture can't make.
    """
    get = config.get if hasattr(config, 'get') else (lambda k, d: getattr(config, k, d))
    arch = get('arch', None)
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f'num_classes must be a non-negative int, got {num_classes!r}')
    return lookup(ARCHITECTURES, arch, 'model.arch')(config, data_shape, num_classes)


__all__ = [
    'ARCHITECTURES', 'model_defaults', 'TINY_MODEL_OVERRIDES', 'UPSAMPLE', 'build_models',
    'build_mlp', 'build_dcgan', 'build_resnet', 'MLPGenerator', 'MLPDiscriminator',
    'DCGANGenerator', 'DCGANDiscriminator', 'ResNetGenerator', 'ResNetDiscriminator',
    'build_resnet1d', 'ResNet1DGenerator', 'ResNet1DDiscriminator',
    'class_split', 'D_HEADS', 'dcgan_plan', 'resnet_base_shape', 'depth_to_space', 'space_to_depth',
]
