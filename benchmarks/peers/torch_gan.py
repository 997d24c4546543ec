"""PyTorch peers of ganjax's DCGAN-64, DCGAN-28 and ResNet-32 training steps, for speed comparisons.

The models are layer-for-layer the ganjax models of the same config (same layers, widths, biases,
norms and parameter counts; see README.md beside this file), and the training step is ganjax's
default step: ``n_critic`` D updates, each on its own real batch with a fake batch from G in train
mode (no gradient into G), then one G update on fresh z, then the EMA of G's parameters.

Widths, latent size, loss, n_critic, Adam settings, learning-rate schedule and EMA decay are read
from the ganjax config files (``configs/*.py`` via ``ganjax.config.load_config_file``), so the peer
cannot drift from the config it stands for.

    python benchmarks/peers/torch_gan.py --model dcgan64 --batch 64 --mode eager
    python benchmarks/peers/torch_gan.py --model dcgan64 --batch 64 --mode compile --json out.json
    python benchmarks/peers/torch_gan.py --model dcgan64 --layers pytorch_example

images/s counts real images consumed: batch x n_critic / (median step time), as
``benchmarks/throughput.py`` does for ganjax.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

# benchmarks/machine.py (the CPU's model and ISA, without jax), one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import machine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Peer name -> (ganjax config file relative to the repository root, data shape (H, W, C)).
MODELS: dict[str, tuple[str, tuple[int, int, int]]] = {
    'dcgan64': ('configs/dcgan_celeba64.py', (64, 64, 3)),
    'dcgan28': ('configs/dcgan_mnist.py', (28, 28, 1)),
    'resnet32': ('configs/resnet_cifar10.py', (32, 32, 3)),
}
LAYERS = ('ganjax', 'pytorch_example')
LOSSES = ('non_saturating', 'hinge')

# Same constants as ganjax.models (layers.py, dcgan.py, resnet.py).
BATCH_NORM_MOMENTUM = 0.1  # PyTorch convention; Flax's 0.9
BATCH_NORM_EPSILON = 1e-5
LAYER_NORM_EPSILON = 1e-6  # flax.linen.LayerNorm's default
MIN_BASE = 4
RESNET_UP_BLOCKS = 3


# --------------------------------------------------------------------------------------------
# Config


def load_config(model: str, overrides: Optional[dict] = None):
    """Loads the ganjax config a peer stands for.

    Args:
      model: a key of :data:`MODELS`.
      overrides: dotted key -> value text, applied as `ganjax train --config.KEY=VALUE` does.

    Returns:
      ``(config, data_shape)``: the ml_collections ConfigDict and ``(H, W, C)``.
    """
    if model not in MODELS:
        raise ValueError(f'unknown model {model!r}; choose one of {sorted(MODELS)}')
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from ganjax import config as config_lib  # noqa: PLC0415 (imports ml_collections only)
    path, shape = MODELS[model]
    config = config_lib.load_config_file(os.path.join(ROOT, path))
    if overrides:
        config_lib.apply_overrides(config, overrides)
        config_lib.validate(config)
    return config, shape


def check_supported(config) -> None:
    """Raises ValueError for a config option the peer does not implement (never ignores one)."""
    m = config.model
    expect = {
        # DCGAN: conv_d2s or the 4x4 stride-2 transposed conv (both ganjax computations of it);
        # the ResNet peer implements conv_d2s.
        'model.upsample': (m.upsample, ('conv_d2s',) if m.arch == 'resnet' else
                           ('conv_d2s', 'transpose', 'transpose_phases')),
        'model.downsample': (m.downsample, ('space_to_depth',)),
        'model.output_activation': (m.output_activation, ('tanh',)),
        'model.g_norm': (m.g_norm, ('batch', 'layer', 'none')),
        'model.d_norm': (m.d_norm, ('batch', 'layer', 'none')),
        'model.arch': (m.arch, ('dcgan', 'resnet')),
        'loss.name': (config.loss.name, LOSSES),
        'penalty.name': (config.penalty.name, ('none',)),
        'optim.name': (config.optim.name, ('adam',)),
        'optim.schedule': (config.optim.schedule, ('constant', 'linear', 'cosine')),
    }
    for key, (value, allowed) in expect.items():
        if value not in allowed:
            raise ValueError(f'the PyTorch peer implements {key} in {allowed}, got {value!r}')
    if config.loss.weight_clip > 0 or config.optim.grad_clip_norm > 0:
        raise ValueError('the PyTorch peer implements neither weight nor gradient clipping')


# --------------------------------------------------------------------------------------------
# Layers shared by the models


def dcgan_plan(spatial: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """ganjax.models.dcgan.dcgan_plan: base grid and number of x2 stages.

    Mirrored rather than imported so that the peer's process never loads JAX and XLA beside
    PyTorch (tests/test_peers.py checks the two build the same shapes).
    """
    counts = []
    for s in spatial:
        n = 0
        while s % 2 == 0 and s // 2 >= MIN_BASE:
            s //= 2
            n += 1
        counts.append(n)
    n = min(counts)
    if n == 0:
        raise ValueError(f'DCGAN cannot generate spatial shape {tuple(spatial)}')
    return tuple(s >> n for s in spatial), n


def _multiplier(k: int, max_multiplier: int = 8) -> int:
    return min(2 ** k, max_multiplier)


def bias_before(norm: str) -> bool:
    """ganjax.models.layers.bias_before: no bias in a layer that feeds a BatchNorm."""
    return norm != 'batch'


def make_norm(kind: str, channels: int) -> nn.Module:
    """ganjax.models.layers.normalize for NCHW activations.

    'layer' is Flax's LayerNorm over all non-batch axes with per-channel scale and bias, which is
    exactly GroupNorm with one group.
    """
    if kind == 'batch':
        return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM)
    if kind == 'layer':
        return nn.GroupNorm(1, channels, eps=LAYER_NORM_EPSILON)
    if kind == 'none':
        return nn.Identity()
    raise ValueError(f'unknown norm {kind!r}')


def maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    """Spectral norm with one power iteration per training-mode call, as Flax's SpectralNorm.

    (Flax iterates u -> v -> u from the stored u and takes sigma = v W u; PyTorch iterates from the
    stored v and takes sigma = u W v: the same cost, slightly different estimates.)
    """
    return torch_spectral_norm(layer, n_power_iterations=1, eps=1e-12) if on else layer


def _tag(layer: nn.Module, layout: str, **info: Any) -> nn.Module:
    # How a ganjax kernel maps onto this layer's weight (see load_ganjax_variables).
    layer._ganjax_layout = layout
    layer._ganjax_info = info
    return layer


def _weight(layer: nn.Module) -> torch.Tensor:
    """The trainable weight of a layer (the original, un-normalized one under spectral norm)."""
    if hasattr(layer, 'parametrizations') and 'weight' in layer.parametrizations:
        return layer.parametrizations.weight.original
    return layer.weight


def _init(layer: nn.Module, init: str, icnr: int = 1) -> nn.Module:
    """Initializes like ganjax: kernels by ``init`` (ICNR-tiled ``icnr`` times), biases zero.

    ``icnr`` > 1 repeats each base filter ``icnr`` times along the output channels in PixelShuffle's
    layout (c, offset_h, offset_w), so the sub-pixel conv starts as "conv, then nearest x2", as
    ganjax.models.layers.icnr does in its own layout.
    """
    w = _weight(layer)
    with torch.no_grad():
        base = torch.empty((w.shape[0] // icnr,) + tuple(w.shape[1:]), dtype=w.dtype)
        if init == 'dcgan':
            nn.init.normal_(base, 0.0, 0.02)
        elif init == 'residual':  # variance_scaling(2.0, 'fan_avg', 'uniform')
            nn.init.xavier_uniform_(base, gain=math.sqrt(2.0))
        elif init == 'glorot':
            nn.init.xavier_uniform_(base)
        elif init == 'lecun':  # Flax Dense's default kernel init: lecun_normal (truncated)
            std = 1.0 / math.sqrt(base[0].numel()) / 0.87962566103423978
            nn.init.trunc_normal_(base, 0.0, std, -2.0 * std, 2.0 * std)
        else:
            raise ValueError(init)
        w.copy_(base.repeat_interleave(icnr, dim=0))
        if getattr(layer, 'bias', None) is not None:
            layer.bias.zero_()
    return layer


class ConvDepthToSpace(nn.Module):
    """ganjax's 'conv_d2s' upsampling: 3x3 'SAME' conv to ``features * 4`` channels, then x2
    depth-to-space.

    nn.PixelShuffle reads the channel axis as (c, offset_h, offset_w), ganjax's depth_to_space as
    (offset_h, offset_w, c): the two layers differ only by a fixed permutation of the conv's output
    channels, i.e. they are the same layer with permuted weights (load_ganjax_variables applies it).
    """

    def __init__(self, in_channels: int, features: int, *, kernel_size: int = 3, bias: bool,
                 spectral_norm: bool, init: str):
        super().__init__()
        conv = nn.Conv2d(in_channels, features * 4, kernel_size, padding=kernel_size // 2,
                         bias=bias)
        _init(conv, init, icnr=4)
        self.conv = _tag(maybe_sn(conv, spectral_norm), 'conv_d2s')
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def _conv(cin: int, cout: int, k: int, *, bias: bool, sn: bool, init: str) -> nn.Module:
    conv = _init(nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias), init)
    return _tag(maybe_sn(conv, sn), 'conv')


def _float32_logit(logit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # ganjax.models.layers.logit_head: the final Dense(1) runs in float32 whatever the precision.
    with torch.autocast(x.device.type, enabled=False):
        return logit(x.float())[:, 0]


# --------------------------------------------------------------------------------------------
# DCGAN (ganjax.models.dcgan)


class TransposeUp(nn.Module):
    """ganjax's 'transpose' and 'transpose_phases' upsampling: the 4x4 stride-2 transposed conv
    (PyTorch's ConvTranspose2d with padding 1, DCGAN's layer)."""

    def __init__(self, in_channels: int, features: int, *, bias: bool, spectral_norm: bool):
        super().__init__()
        conv = nn.ConvTranspose2d(in_channels, features, 4, 2, 1, bias=bias)
        _init(conv, 'dcgan')
        # spectral_norm's dim=1: the output channels of a ConvTranspose2d weight [in, out, h, w].
        layer = torch.nn.utils.parametrizations.spectral_norm(conv, dim=1) if spectral_norm \
            else conv
        self.conv = _tag(layer, 'conv_transpose')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DCGANGenerator(nn.Module):
    """ganjax DCGANGenerator: Dense(z) -> [norm, ReLU] -> (n - 1) x [upsample x2, norm, ReLU] ->
    upsample x2 to C (with bias) -> tanh. Submodule names are ganjax's."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 100, features: int = 64,
                 max_multiplier: int = 8, norm: str = 'batch', spectral_norm: bool = False,
                 upsample: str = 'conv_d2s'):
        super().__init__()
        *spatial, channels = data_shape
        self.latent_dim = latent_dim
        self.base, n = dcgan_plan(spatial)
        self.width = features * _multiplier(n - 1, max_multiplier)
        bias = bias_before(norm)
        project = _init(nn.Linear(latent_dim, math.prod(self.base) * self.width, bias=bias),
                        'dcgan')
        self.project = _tag(maybe_sn(project, spectral_norm), 'dense_project',
                            grid=(self.width, *self.base))
        self.project_norm = make_norm(norm, self.width)
        self.stages = []
        cin = self.width
        for i in range(1, n + 1):
            last = i == n
            cout = channels if last else features * _multiplier(n - 1 - i, max_multiplier)
            if upsample == 'conv_d2s':
                up = ConvDepthToSpace(cin, cout, bias=last or bias, spectral_norm=spectral_norm,
                                      init='dcgan')
            else:
                up = TransposeUp(cin, cout, bias=last or bias, spectral_norm=spectral_norm)
            self.add_module(f'up{i}', up)
            if not last:
                self.add_module(f'up{i}_norm', make_norm(norm, cout))
            self.stages.append((f'up{i}', None if last else f'up{i}_norm'))
            cin = cout

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).reshape(z.shape[0], self.width, *self.base)
        x = F.relu(self.project_norm(x))
        for up, norm in self.stages:
            x = getattr(self, up)(x)
            if norm is not None:
                x = F.relu(getattr(self, norm)(x))
        return torch.tanh(x.float())


class DCGANDiscriminator(nn.Module):
    """ganjax DCGANDiscriminator with downsample='space_to_depth': ``n`` x [pad (2, 0), conv 4x4
    stride 2, norm (not on the first), LeakyReLU(0.2)] -> flatten -> Linear(1) in float32.

    ganjax's stage is a Dense on the 2^2 neighbouring 2x2 blocks of a space-to-depth input padded
    one block before, i.e. exactly a 4x4 stride-2 conv padded 2 before and 0 after on each spatial
    axis (the Dense kernel is the conv kernel with permuted rows, see load_ganjax_variables).
    Submodule names are ganjax's.
    """

    def __init__(self, data_shape: Sequence[int], features: int = 64, max_multiplier: int = 8,
                 norm: str = 'batch', spectral_norm: bool = False,
                 num_stages: Optional[int] = None):
        super().__init__()
        *spatial, channels = data_shape
        n = dcgan_plan(spatial)[1] if num_stages is None else int(num_stages)
        if any(s % 2 ** n for s in spatial):
            raise ValueError(f'DCGANDiscriminator with {n} stride-2 stages needs spatial sizes '
                             f'divisible by {2 ** n}, got {tuple(spatial)}')
        self.num_stages = n
        self.norms = []
        cin = channels
        for i in range(n):
            cout = features * _multiplier(i, max_multiplier)
            conv = _init(nn.Conv2d(cin, cout, 4, stride=2, padding=0,
                                   bias=i == 0 or bias_before(norm)), 'dcgan')
            self.add_module(f'conv{i}', _tag(maybe_sn(conv, spectral_norm), 'dense_s2d'))
            if i > 0:
                self.add_module(f'norm{i}', make_norm(norm, cout))
            self.norms.append(f'norm{i}' if i > 0 else None)
            cin = cout
        grid = tuple(s >> n for s in spatial)
        logit = _init(nn.Linear(cin * math.prod(grid), 1), 'lecun')
        self.logit = _tag(maybe_sn(logit, spectral_norm), 'dense_flatten', grid=(cin, *grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, norm in enumerate(self.norms):
            x = getattr(self, f'conv{i}')(F.pad(x, (2, 0, 2, 0)))
            if norm is not None:
                x = getattr(self, norm)(x)
            x = F.leaky_relu(x, 0.2)
        return _float32_logit(self.logit, x.flatten(1))


# --------------------------------------------------------------------------------------------
# ResNet (ganjax.models.resnet)


def nearest_upsample(x: torch.Tensor, r: int = 2) -> torch.Tensor:
    """ganjax.models.layers.nearest_upsample (jnp.repeat on every spatial axis) for NCHW."""
    return F.interpolate(x, scale_factor=r, mode='nearest')


class GeneratorBlock(nn.Module):
    """ganjax resnet.GeneratorBlock: norm1, ReLU, conv_d2s x2 ('up'), norm2, ReLU, conv2 3x3;
    shortcut: conv1x1 ('shortcut') then nearest x2. No biases under BatchNorm."""

    def __init__(self, in_channels: int, features: int, norm: str = 'batch',
                 spectral_norm: bool = False):
        super().__init__()
        bias = bias_before(norm)
        self.norm1 = make_norm(norm, in_channels)
        self.up = ConvDepthToSpace(in_channels, features, bias=bias, spectral_norm=spectral_norm,
                                   init='residual')
        self.norm2 = make_norm(norm, features)
        self.conv2 = _conv(features, features, 3, bias=bias, sn=spectral_norm, init='residual')
        self.shortcut = _conv(in_channels, features, 1, bias=bias, sn=spectral_norm,
                              init='glorot')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + nearest_upsample(self.shortcut(x), 2)


class DiscriminatorBlock(nn.Module):
    """ganjax resnet.DiscriminatorBlock: [norm1], ReLU, conv1 3x3, [norm2], ReLU, conv2 3x3,
    [avg-pool x2]; shortcut conv1x1 (+ avg-pool) when the shape changes, else identity.
    ``optimized``: SNGAN's first block (no norm1 / ReLU before conv1; shortcut avg-pool, conv1x1).
    """

    def __init__(self, in_channels: int, features: int, norm: str = 'none',
                 spectral_norm: bool = False, downsample: bool = True, optimized: bool = False):
        super().__init__()
        self.downsample = downsample
        self.optimized = optimized
        if not optimized:
            self.norm1 = make_norm(norm, in_channels)
        # conv1 feeds norm2, which cancels its bias when it is a BatchNorm.
        self.conv1 = _conv(in_channels, features, 3, bias=bias_before(norm), sn=spectral_norm,
                           init='residual')
        self.norm2 = make_norm(norm, features)
        self.conv2 = _conv(features, features, 3, bias=True, sn=spectral_norm, init='residual')
        self.shortcut = None
        if optimized or downsample or in_channels != features:
            self.shortcut = _conv(in_channels, features, 1, bias=True, sn=spectral_norm,
                                  init='glorot')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.optimized else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.optimized:
            s = self.shortcut(F.avg_pool2d(x, 2))
        elif self.shortcut is not None:
            s = self.shortcut(x)
            if self.downsample:
                s = F.avg_pool2d(s, 2)
        else:
            s = x
        return h + s


class ResNetGenerator(nn.Module):
    """ganjax ResNetGenerator: Linear(z) ('project') -> base grid x features -> ``num_blocks``
    up-blocks ('block<i>') -> out_norm, ReLU, conv3x3 to C ('out') -> tanh."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 128, features: int = 256,
                 num_blocks: int = RESNET_UP_BLOCKS, norm: str = 'batch',
                 spectral_norm: bool = False):
        super().__init__()
        *spatial, channels = data_shape
        factor = 2 ** num_blocks
        if any(s % factor or s < factor for s in spatial):
            raise ValueError(f'the ResNet GAN needs spatial sizes divisible by {factor}, got '
                             f'{tuple(spatial)}')
        self.latent_dim = latent_dim
        self.features = features
        self.base = tuple(s // factor for s in spatial)
        project = _init(nn.Linear(latent_dim, math.prod(self.base) * features,
                                  bias=bias_before(norm)), 'glorot')
        self.project = _tag(maybe_sn(project, spectral_norm), 'dense_project',
                            grid=(features, *self.base))
        self.num_blocks = num_blocks
        for i in range(num_blocks):
            self.add_module(f'block{i}', GeneratorBlock(features, features, norm=norm,
                                                        spectral_norm=spectral_norm))
        self.out_norm = make_norm(norm, features)
        self.out = _conv(features, channels, 3, bias=True, sn=spectral_norm, init='glorot')

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).reshape(z.shape[0], self.features, *self.base)
        for i in range(self.num_blocks):
            x = getattr(self, f'block{i}')(x)
        x = self.out(F.relu(self.out_norm(x)))
        return torch.tanh(x.float())


class ResNetDiscriminator(nn.Module):
    """ganjax ResNetDiscriminator: optimized block0 (down) -> ``num_down - 1`` down-blocks ->
    ``num_plain`` blocks -> ReLU -> global sum pool (float32) -> Linear(1) ('logit')."""

    def __init__(self, data_shape: Sequence[int], features: int = 128, num_down: int = 2,
                 num_plain: int = 2, norm: str = 'none', spectral_norm: bool = False):
        super().__init__()
        *spatial, channels = data_shape
        if any(s % 2 ** num_down for s in spatial):
            raise ValueError(f'ResNetDiscriminator with {num_down} x2 down-blocks needs spatial '
                             f'sizes divisible by {2 ** num_down}, got {tuple(spatial)}')
        common = dict(norm=norm, spectral_norm=spectral_norm)
        self.num_blocks = num_down + num_plain
        self.block0 = DiscriminatorBlock(channels, features, optimized=True, **common)
        for i in range(1, self.num_blocks):
            self.add_module(f'block{i}', DiscriminatorBlock(features, features,
                                                            downsample=i < num_down, **common))
        self.logit = maybe_sn(_init(nn.Linear(features, 1), 'lecun'), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_blocks):
            x = getattr(self, f'block{i}')(x)
        x = F.relu(x).float().sum((2, 3))
        return _float32_logit(self.logit, x)


# --------------------------------------------------------------------------------------------
# PyTorch's own DCGAN example (pytorch/examples dcgan/main.py)


def _example_init(m: nn.Module) -> None:
    """weights_init of pytorch/examples' DCGAN: N(0, 0.02) convs; BatchNorm N(1, 0.02), bias 0."""
    name = type(m).__name__
    if 'Conv' in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif 'BatchNorm' in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ExampleGenerator(nn.Module):
    """pytorch/examples' DCGAN generator: ConvTranspose2d 4x4 (z -> 8 ngf @ 4x4, then stride 2:
    4 ngf @ 8, 2 ngf @ 16, ngf @ 32, nc @ 64), BatchNorm + ReLU, tanh. Takes z ``[B, nz]``."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.latent_dim = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        )
        self.apply(_example_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.main(z.reshape(z.shape[0], -1, 1, 1)).float())


class ExampleDiscriminator(nn.Module):
    """pytorch/examples' DCGAN discriminator: Conv2d 4x4 stride 2 padding 1 (nc -> ndf -> 2 ndf ->
    4 ndf -> 8 ndf), BatchNorm on all but the first, LeakyReLU(0.2), then Conv2d(8 ndf, 1, 4, 1, 0).
    Returns logits ``[B]`` (the example's Sigmoid + BCELoss is BCE-with-logits)."""

    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        )
        self.apply(_example_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).reshape(x.shape[0]).float()


# --------------------------------------------------------------------------------------------
# Building


def build_models(config, data_shape: Sequence[int], layers: str = 'ganjax',
                 ) -> tuple[nn.Module, nn.Module]:
    """Builds the PyTorch (G, D) standing for a ganjax config.

    Args:
      config: the ganjax ConfigDict (see :func:`load_config`); its ``model`` section gives the
        architecture, widths, latent size, norms and spectral norm.
      data_shape: ``(H, W, C)`` of one example.
      layers: 'ganjax' (ganjax's layers, :func:`load_ganjax_variables` applies) or
        'pytorch_example' (pytorch/examples' DCGAN for 64x64 images; nz, ngf, ndf from the config).

    Returns:
      ``(G, D)``: G maps z ``[B, latent_dim]`` to float32 images ``[B, C, H, W]`` in [-1, 1], D maps
      images ``[B, C, H, W]`` to float32 logits ``[B]``. Both in train mode, on the CPU.

    Raises:
      ValueError: an option the peer does not implement, or a data shape the model cannot take.
    """
    check_supported(config)
    m = config.model
    shape = tuple(int(s) for s in data_shape)
    if len(shape) != 3:
        raise ValueError(f'the PyTorch peers take images (H, W, C), got data shape {shape}')
    if layers == 'pytorch_example':
        if m.arch != 'dcgan' or shape[:2] != (64, 64):
            raise ValueError('layers="pytorch_example" is the DCGAN for 64x64 images; got '
                             f'arch={m.arch!r} and data shape {shape}')
        return (ExampleGenerator(int(m.latent_dim), int(m.g_features), shape[-1]),
                ExampleDiscriminator(int(m.d_features), shape[-1]))
    if layers != 'ganjax':
        raise ValueError(f'layers must be one of {LAYERS}, got {layers!r}')
    if m.arch == 'dcgan':
        _, n = dcgan_plan(shape[:-1])
        G = DCGANGenerator(shape, latent_dim=int(m.latent_dim), features=int(m.g_features),
                           norm=m.g_norm, spectral_norm=bool(m.g_spectral_norm),
                           upsample=m.upsample)
        D = DCGANDiscriminator(shape, features=int(m.d_features), norm=m.d_norm,
                               spectral_norm=bool(m.d_spectral_norm), num_stages=n)
    elif m.arch == 'resnet':
        G = ResNetGenerator(shape, latent_dim=int(m.latent_dim), features=int(m.g_features),
                            num_blocks=RESNET_UP_BLOCKS, norm=m.g_norm,
                            spectral_norm=bool(m.g_spectral_norm))
        D = ResNetDiscriminator(shape, features=int(m.d_features), norm=m.d_norm,
                                spectral_norm=bool(m.d_spectral_norm))
    else:  # check_supported already refused it
        raise ValueError(f'unknown arch {m.arch!r}')
    return G.train(), D.train()


def count_params(module: nn.Module) -> int:
    """Number of parameters (under spectral norm the original weights; u and v are buffers)."""
    return sum(p.numel() for p in module.parameters())


def load_ganjax_variables(module: nn.Module, params: dict, batch_stats: Optional[dict] = None,
                          ) -> None:
    """Copies ganjax (Flax) variables into a peer built by :func:`build_models` (layers='ganjax').

    Used by the tests to check that the peer computes the same function as ganjax. Spectral-norm
    vectors are not copied (the two libraries' power iterations differ, see :func:`maybe_sn`).

    Args:
      module: the torch G or D.
      params: the Flax 'params' tree of the same model (nested dicts of arrays).
      batch_stats: the Flax 'batch_stats' tree (BatchNorm running statistics), or None.
    """
    import numpy as np  # noqa: PLC0415

    def t(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    def conv_kernel(k: torch.Tensor) -> torch.Tensor:  # [kh, kw, in, out] -> [out, in, kh, kw]
        return k.permute(3, 2, 0, 1)

    def kernel_to_weight(layer: nn.Module, k: torch.Tensor) -> torch.Tensor:
        layout = getattr(layer, '_ganjax_layout', 'dense' if isinstance(layer, nn.Linear)
                         else 'conv')
        info = getattr(layer, '_ganjax_info', {})
        if layout == 'conv':
            return conv_kernel(k)
        if layout == 'conv_transpose':
            # Flax's ConvTranspose (transpose_kernel=False) correlates with the kernel as stored;
            # PyTorch's is the gradient of a conv, which flips the window: [in, out, kh, kw].
            return k.flip(0, 1).permute(2, 3, 0, 1)
        if layout == 'conv_d2s':  # out channels (oh, ow, c) -> PixelShuffle's (c, oh, ow)
            kh, kw, cin, cout = k.shape
            k = k.reshape(kh, kw, cin, 4, cout // 4).transpose(3, 4).reshape(kh, kw, cin, cout)
            return conv_kernel(k)
        if layout == 'dense_s2d':
            # Rows (block_h, block_w, offset_h, offset_w, c) of the patch Dense -> a 4x4 kernel
            # with kernel row 2 * block_h + offset_h (column likewise).
            rows, cout = k.shape
            k = k.reshape(2, 2, 2, 2, rows // 16, cout).permute(0, 2, 1, 3, 4, 5)
            return conv_kernel(k.reshape(4, 4, rows // 16, cout))
        if layout == 'dense_project':  # columns (h, w, c) -> rows (c, h, w)
            c, h, w = info['grid']
            return k.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(k.shape[0], -1).T
        if layout == 'dense_flatten':  # rows (h, w, c) -> columns (c, h, w)
            c, h, w = info['grid']
            return k.reshape(h, w, c, -1).permute(2, 0, 1, 3).reshape(c * h * w, -1).T
        if layout == 'dense':
            return k.T
        raise ValueError(layout)

    def bias_perm(layer: nn.Module, b: torch.Tensor) -> torch.Tensor:
        if getattr(layer, '_ganjax_layout', '') == 'conv_d2s':
            return b.reshape(4, -1).T.reshape(-1)
        if getattr(layer, '_ganjax_layout', '') == 'dense_project':
            c, h, w = layer._ganjax_info['grid']
            return b.reshape(h, w, c).permute(2, 0, 1).reshape(-1)
        return b

    def walk(node: dict, prefix: str, stats: Optional[dict]) -> None:
        if 'kernel' in node or 'scale' in node:
            layer = module.get_submodule(prefix)
            with torch.no_grad():
                if 'kernel' in node:
                    w = _weight(layer)
                    w.copy_(kernel_to_weight(layer, t(node['kernel'])).reshape(w.shape))
                    if 'bias' in node:
                        layer.bias.copy_(bias_perm(layer, t(node['bias'])))
                else:  # BatchNorm / LayerNorm
                    layer.weight.copy_(t(node['scale']))
                    layer.bias.copy_(t(node['bias']))
                    if stats is not None and isinstance(layer, nn.BatchNorm2d):
                        layer.running_mean.copy_(t(stats['mean']))
                        layer.running_var.copy_(t(stats['var']))
            return
        for key, child in node.items():
            name = key[:-3] if key.endswith('_sn') else key
            child_stats = stats.get(key) if stats is not None else None
            walk(child, f'{prefix}.{name}' if prefix else name, child_stats)

    # ganjax's ConvDepthToSpace holds its conv as 'up1/conv', like ours.
    walk(dict(params), '', dict(batch_stats) if batch_stats is not None else None)


# --------------------------------------------------------------------------------------------
# The training step


def _schedule(name: str, lr: float, total: int) -> Callable[[int], float]:
    """ganjax.optim._schedule as a function of the optimizer's update count."""
    total = max(int(total), 1)
    if name == 'constant':
        return lambda count: lr
    if name == 'linear':  # optax.linear_schedule(lr, 0, total)
        return lambda count: lr * (1.0 - min(count, total) / total)
    if name == 'cosine':  # optax.cosine_decay_schedule(lr, total)
        return lambda count: lr * 0.5 * (1.0 + math.cos(math.pi * min(count, total) / total))
    raise ValueError(name)


def d_loss_fn(name: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r, f = real_logits.float(), fake_logits.float()
    if name == 'non_saturating':  # BCE-with-logits: -log sigmoid(r) - log(1 - sigmoid(f))
        return F.softplus(-r).mean() + F.softplus(f).mean()
    if name == 'hinge':
        return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()
    raise ValueError(name)


def g_loss_fn(name: str, fake_logits: torch.Tensor) -> torch.Tensor:
    f = fake_logits.float()
    if name == 'non_saturating':  # -log sigmoid(f)
        return F.softplus(-f).mean()
    if name == 'hinge':
        return -f.mean()
    raise ValueError(name)


class GANTrainer:
    """ganjax's default training step (ganjax.train_step.make_train_step) in PyTorch.

    One :meth:`step` is ``n_critic`` D updates (each on its own real batch, with fakes from G in
    train mode under no_grad, D run separately on the real and the fake batch as ganjax does), then
    one G update on fresh z (D's parameters frozen, so no D weight gradients are computed; ganjax
    differentiates w.r.t. G's parameters only), then the EMA of G's parameters with ganjax's
    warm-up ``decay = min(decay, (1 + t) / (10 + t))``. Real data arrives as uint8 and is scaled to
    [-1, 1] inside the D update.

    mode='compile' wraps the whole D-update and G-update functions (loss, backward, optimizer step)
    in torch.compile: Dynamo compiles the forward (with AOTAutograd's backward) up to the
    ``backward()`` call and the optimizer step after it as a second graph (PyTorch's "compiled
    optimizer"); scheduled learning rates are tensors so that they do not recompile.
    """

    def __init__(self, config, G: nn.Module, D: nn.Module, *, batch_size: int,
                 n_critic: Optional[int] = None, device: str = 'cpu', precision: str = 'float32',
                 mode: str = 'eager', compile_mode: Optional[str] = None,
                 channels_last: bool = False):
        if config.loss.name not in LOSSES:
            raise ValueError(f'loss {config.loss.name!r} not implemented; one of {LOSSES}')
        if precision not in ('float32', 'bf16'):
            raise ValueError(f'precision must be float32 or bf16, got {precision!r}')
        if mode not in ('eager', 'compile'):
            raise ValueError(f'mode must be eager or compile, got {mode!r}')
        self.device = torch.device(device)
        self.loss = config.loss.name
        self.batch_size = int(batch_size)
        self.n_critic = int(config.train.n_critic if n_critic is None else n_critic)
        self.latent_dim = int(config.model.latent_dim)
        self.bf16 = precision == 'bf16'
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.G = G.to(self.device, memory_format=fmt).train()
        self.D = D.to(self.device, memory_format=fmt).train()
        self.memory_format = fmt
        self.g_params = [p for p in self.G.parameters()]
        self.d_params = [p for p in self.D.parameters()]
        self.ema_params = [p.detach().clone() for p in self.g_params]
        o = config.optim
        compiled = mode == 'compile'

        def adam(params, lr):
            # Eager: the fused (single-kernel) Adam; compiled: Inductor fuses the step itself, and
            # a scheduled learning rate is a tensor, so that changing it does not recompile.
            kwargs = dict(betas=(o.b1, o.b2), eps=o.eps)
            if compiled:
                if o.schedule != 'constant':
                    lr = torch.tensor(lr, device=self.device)
                return torch.optim.Adam(params, lr=lr, **kwargs)
            return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)

        self.g_opt, self.d_opt = adam(self.g_params, o.g_lr), adam(self.d_params, o.d_lr)
        steps = int(config.train.num_steps)
        self.g_lr = _schedule(o.schedule, o.g_lr, steps)
        self.d_lr = _schedule(o.schedule, o.d_lr, steps * self.n_critic)
        self.constant_lr = o.schedule == 'constant'
        self.ema_decay = float(config.ema.decay)
        self.ema_warmup = bool(config.ema.warmup)
        self.step_count = 0
        self.d_count = 0
        self._d_update, self._g_update = self._d_update_fn, self._g_update_fn
        if compiled:
            self._d_update = torch.compile(self._d_update_fn, mode=compile_mode)
            self._g_update = torch.compile(self._g_update_fn, mode=compile_mode)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _z(self) -> torch.Tensor:
        return torch.randn(self.batch_size, self.latent_dim, device=self.device)

    def _d_update_fn(self, real_u8: torch.Tensor) -> torch.Tensor:
        real = real_u8.float() * (2.0 / 255.0) - 1.0
        with torch.no_grad(), self._autocast():
            fake = self.G(self._z())
        with self._autocast():
            d_loss = d_loss_fn(self.loss, self.D(real), self.D(fake))
        d_loss.backward()
        self.d_opt.step()
        return d_loss.detach()

    def _g_update_fn(self) -> torch.Tensor:
        with self._autocast():
            g_loss = g_loss_fn(self.loss, self.D(self.G(self._z())))
        g_loss.backward()
        self.g_opt.step()
        return g_loss.detach()

    @staticmethod
    def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            if isinstance(group['lr'], torch.Tensor):
                group['lr'].fill_(lr)
            else:
                group['lr'] = lr

    @torch.no_grad()
    def _ema_update(self) -> None:
        decay = self.ema_decay
        if self.ema_warmup:
            decay = min(decay, (1.0 + self.step_count) / (10.0 + self.step_count))
        # ema <- decay * ema + (1 - decay) * p
        torch._foreach_lerp_(self.ema_params, [p.detach() for p in self.g_params], 1.0 - decay)

    def step(self, real_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step.

        Args:
          real_u8: uint8 images ``[n_critic, B, C, H, W]`` on the trainer's device.

        Returns:
          ``(d_loss of the last D update, g_loss)`` as 0-d tensors (not synchronized).
        """
        if real_u8.shape[0] != self.n_critic or real_u8.shape[1] != self.batch_size:
            raise ValueError(f'real batch of shape {tuple(real_u8.shape)}; expected '
                             f'[n_critic={self.n_critic}, batch={self.batch_size}, C, H, W]')
        d_loss = None
        for k in range(self.n_critic):
            if not self.constant_lr:
                self._set_lr(self.d_opt, self.d_lr(self.d_count))
            self.d_opt.zero_grad(set_to_none=True)
            d_loss = self._d_update(real_u8[k].contiguous(memory_format=self.memory_format))
            self.d_count += 1
        if not self.constant_lr:
            self._set_lr(self.g_opt, self.g_lr(self.step_count))
        self.g_opt.zero_grad(set_to_none=True)
        for p in self.d_params:
            p.requires_grad_(False)
        try:
            g_loss = self._g_update()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        self._ema_update()
        self.step_count += 1
        return d_loss, g_loss


# --------------------------------------------------------------------------------------------
# Measuring


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _dynamo_counts() -> dict:
    try:
        from torch._dynamo.utils import counters  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return {'unique_graphs': 0, 'graph_breaks': 0}
    return {'unique_graphs': int(counters['stats']['unique_graphs']),
            'graph_breaks': int(sum(counters['graph_break'].values()))}


def measure(model: str, batch_size: int = 64, n_critic: Optional[int] = None, steps: int = 10,
            warmup: int = 2, mode: str = 'eager', layers: str = 'ganjax', device: str = 'cpu',
            precision: str = 'float32', compile_mode: Optional[str] = None,
            channels_last: bool = False, threads: Optional[int] = None, seed: int = 0,
            overrides: Optional[dict] = None) -> dict:
    """Times the PyTorch peer's training step.

    The first step (which compiles, in mode 'compile') is timed on its own as ``first_step_s``;
    then ``warmup`` untimed steps; then ``steps`` timed steps, each synchronized on a GPU. The real
    batch is random uint8 data already on the device, as in benchmarks/throughput.py.

    Args:
      model: 'dcgan64' | 'dcgan28' | 'resnet32' (:data:`MODELS`).
      batch_size: images per D (and G) update.
      n_critic: D updates per step (None: the config's).
      steps: timed steps.
      warmup: untimed steps after the first.
      mode: 'eager' | 'compile'.
      layers: 'ganjax' | 'pytorch_example' (dcgan64 only).
      device: 'cpu' | 'cuda' (or 'cuda:N').
      precision: 'float32' | 'bf16' (torch.autocast to bfloat16).
      compile_mode: torch.compile's mode (None: default; e.g. 'max-autotune-no-cudagraphs').
      channels_last: NHWC memory format for activations and conv weights.
      threads: torch.set_num_threads (None: PyTorch's default).
      seed: torch.manual_seed.
      overrides: ganjax config overrides (dotted key -> value text), e.g. smaller widths.

    Returns:
      A JSON-serializable dict; ``images_per_sec`` = batch x n_critic / median step time.
    """
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    config, shape = load_config(model, overrides)
    if layers == 'pytorch_example' and model != 'dcgan64':
        raise ValueError('layers="pytorch_example" exists for model="dcgan64" only')
    G, D = build_models(config, shape, layers)
    trainer = GANTrainer(config, G, D, batch_size=batch_size, n_critic=n_critic, device=device,
                         precision=precision, mode=mode, compile_mode=compile_mode,
                         channels_last=channels_last)
    dev = trainer.device
    h, w, c = shape
    real = torch.randint(0, 256, (trainer.n_critic, batch_size, c, h, w), dtype=torch.uint8,
                         device=dev)
    _sync(dev)
    t0 = time.perf_counter()
    trainer.step(real)
    _sync(dev)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        trainer.step(real)
    _sync(dev)
    graphs_before = _dynamo_counts()
    times = []
    t_all = time.perf_counter()
    d_loss = g_loss = None
    for _ in range(steps):
        t = time.perf_counter()
        d_loss, g_loss = trainer.step(real)
        _sync(dev)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - t_all
    graphs_after = _dynamo_counts()
    median = statistics.median(times) if times else float('nan')
    images = batch_size * trainer.n_critic
    result = {
        'benchmark': 'torch_peer_step_throughput',
        'model': model,
        'config': MODELS[model][0],
        'layers': layers,
        'mode': mode,
        'compile_mode': compile_mode,
        'device': str(dev),
        'device_name': (torch.cuda.get_device_name(dev) if dev.type == 'cuda'
                        else machine.cpu_model()),
        'precision': precision,
        'channels_last': channels_last,
        'data_shape': list(shape),
        'batch_size': batch_size,
        'n_critic': trainer.n_critic,
        'loss': config.loss.name,
        'g_params': count_params(G),
        'd_params': count_params(D),
        'first_step_s': first,
        'warmup_steps': warmup,
        'timed_steps': steps,
        'step_s_median': median,
        'step_s_mean': statistics.fmean(times) if times else float('nan'),
        'step_s_min': min(times) if times else float('nan'),
        'steps_per_sec': 1.0 / median if times else float('nan'),
        'images_per_sec': images / median if times else float('nan'),
        'images_per_sec_overall': images * steps / total if times else float('nan'),
        # torch.compile: graphs compiled in all / during the timed steps (should be 0), and graph
        # breaks (expected: the backward() calls, between the forward and the optimizer step).
        'dynamo_graphs': graphs_after['unique_graphs'],
        'dynamo_graphs_compiled_while_timing': (graphs_after['unique_graphs'] -
                                                graphs_before['unique_graphs']),
        'dynamo_graph_breaks': graphs_after['graph_breaks'],
        'final_d_loss': float(d_loss) if d_loss is not None else None,
        'final_g_loss': float(g_loss) if g_loss is not None else None,
        'torch_version': torch.__version__,
        'threads': torch.get_num_threads(),
        **machine.cpu_info(),
        'platform': platform.platform(),
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', choices=sorted(MODELS), default='dcgan64')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--n_critic', type=int, default=None, help="default: the config's")
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--mode', choices=('eager', 'compile'), default='eager')
    parser.add_argument('--compile_mode', default=None,
                        help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    parser.add_argument('--layers', choices=LAYERS, default='ganjax')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', choices=('float32', 'bf16'), default='float32')
    parser.add_argument('--channels_last', action='store_true')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default='', help='also write the result to this file')
    args, extra = parser.parse_known_args(argv)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from ganjax import config as config_lib  # noqa: PLC0415 (imports ml_collections only)
    try:
        overrides = config_lib.parse_override_args(extra)
    except config_lib.ConfigError as e:
        parser.error(str(e))
    result = measure(args.model, args.batch, args.n_critic, args.steps, args.warmup, args.mode,
                     args.layers, args.device, args.precision, args.compile_mode,
                     args.channels_last, args.threads, args.seed, overrides)
    result['overrides'] = overrides
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
