"""A PyTorch peer of ganjax's DNA WGAN-GP (arch='resnet1d', configs/dna_wgan_gp.py), for timing.

The 1D residual G and D of Killoran et al. 2017, in the shape of FBGAN's PyTorch code (Gupta and
Zou 2019: `nn.Linear` to [C, L], `ResBlock`s of ReLU, Conv1d(k, padding k // 2), ReLU, Conv1d,
scaled by 0.3 and added to the input, a width-1 Conv1d to the 4 bases and a softmax; D a width-1
Conv1d in, the same blocks and `nn.Linear(L * C, 1)`), trained as ganjax trains it: per G update,
n_critic critic updates, each on a fresh generated batch with the gradient penalty (lambda from
the config) on random interpolates, then one G update on a fresh batch, Adam with the config's
learning rates and betas, and the EMA of G's parameters. Widths, blocks, kernel width, residual
scale, latent size, n_critic, Adam's settings and the EMA decay are read from the ganjax config,
so the peer cannot drift from it; options it does not implement raise.

    python benchmarks/peers/torch_dna.py --batch 64 --mode eager --json out.json

Writes {'sequences_per_sec', 'step_s_median', ...} as JSON (sequences consumed per second: batch
x n_critic real sequences per step, as ganjax's throughput.py counts them).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from ganjax import config as config_lib  # noqa: E402


class ResBlock(nn.Module):
    """x + scale * conv(relu(conv(relu(x)))) over [B, C, L]."""

    def __init__(self, channels: int, kernel: int, scale: float):
        super().__init__()
        self.conv0 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.scale = scale

    def forward(self, x):
        return x + self.scale * self.conv1(torch.relu(self.conv0(torch.relu(x))))


class Generator(nn.Module):
    """z -> Linear(L * C) -> [C, L] -> blocks -> Conv1d(C, 4, 1) -> softmax over the bases."""

    def __init__(self, latent: int, channels: int, length: int, blocks: int, kernel: int,
                 scale: float, alphabet: int = 4):
        super().__init__()
        self.project = nn.Linear(latent, length * channels)
        self.blocks = nn.Sequential(*[ResBlock(channels, kernel, scale) for _ in range(blocks)])
        self.out = nn.Conv1d(channels, alphabet, 1)
        self.shape = (channels, length)

    def forward(self, z):
        h = self.project(z).view(-1, *self.shape)
        return torch.softmax(self.out(self.blocks(h)), dim=1)


class Critic(nn.Module):
    """[B, 4, L] -> Conv1d(4, C, 1) -> blocks -> Linear(L * C, 1)."""

    def __init__(self, channels: int, length: int, blocks: int, kernel: int, scale: float,
                 alphabet: int = 4):
        super().__init__()
        self.inp = nn.Conv1d(alphabet, channels, 1)
        self.blocks = nn.Sequential(*[ResBlock(channels, kernel, scale) for _ in range(blocks)])
        self.logit = nn.Linear(length * channels, 1)

    def forward(self, x):
        return self.logit(self.blocks(self.inp(x)).flatten(1))[:, 0]


def load_ganjax_variables(g: Generator, d: Critic, g_params, d_params) -> None:
    """Copies a ganjax resnet1d pair's parameters into the peer (so both compute one function).

    ganjax keeps sequences as [L, C] (channels fastest) and its convolutions as Dense kernels on
    the unfolded windows ([k * C_in, C_out], `ganjax.models.resnet1d.conv1d`); PyTorch keeps
    [C, L] and Conv1d weights [C_out, C_in, k]. Odd kernel widths only (PyTorch's padding k // 2
    is 'SAME' only for them).

    Args:
      g, d: the peer's modules.
      g_params, d_params: ganjax's 'params' collections of G and D.
    """
    def t(a):
        return torch.from_numpy(np.array(a, np.float32))

    def conv(module, p):
        kernel = np.asarray(p['kernel'])
        c_out = kernel.shape[1]
        width = module.weight.shape[2]
        module.weight.data = t(kernel.reshape(width, -1, c_out).transpose(2, 1, 0))
        module.bias.data = t(p['bias'])

    channels, length = g.shape
    # Flat index l * C + c (ganjax's reshape) -> c * L + l (PyTorch's view).
    order = np.arange(length * channels).reshape(length, channels).T.reshape(-1)
    g.project.weight.data = t(np.asarray(g_params['project']['kernel'])[:, order].T)
    g.project.bias.data = t(np.asarray(g_params['project']['bias'])[order])
    for net, params in ((g, g_params), (d, d_params)):
        for i, block in enumerate(net.blocks):
            conv(block.conv0, params[f'block{i}']['conv0'])
            conv(block.conv1, params[f'block{i}']['conv1'])
    conv(g.out, g_params['out'])
    conv(d.inp, d_params['in'])
    length_d = d.logit.weight.shape[1] // d.inp.weight.shape[0]
    order_d = np.arange(d.logit.weight.shape[1]).reshape(length_d, -1).T.reshape(-1)
    d.logit.weight.data = t(np.asarray(d_params['logit']['kernel'])[order_d].T)
    d.logit.bias.data = t(d_params['logit']['bias'])


def check_config(config) -> None:
    """Raises for the config options this peer does not implement."""
    m = config.model
    wanted = {'model.arch': (m.arch, 'resnet1d'), 'model.seq_output': (m.seq_output, 'softmax'),
              'model.g_norm': (m.g_norm, 'none'), 'model.d_norm': (m.d_norm, 'none'),
              'loss.name': (config.loss.name, 'wasserstein'),
              'penalty.name': (config.penalty.name, 'wgan_gp'),
              'optim.name': (config.optim.name, 'adam'), 'model.conditional': (
                  m.conditional, False), 'model.g_spectral_norm': (m.g_spectral_norm, False),
              'model.d_spectral_norm': (m.d_spectral_norm, False)}
    for key, (value, need) in wanted.items():
        if value != need:
            raise SystemExit(f'torch_dna peer implements {key}={need!r} only, got {value!r}')


def make_step(config, g, d, g_ema, batch: int):
    """One training step (n_critic critic updates, one G update, the EMA), as a function."""
    o = config.optim
    g_opt = torch.optim.Adam(g.parameters(), lr=o.g_lr, betas=(o.b1, o.b2), eps=o.eps)
    d_opt = torch.optim.Adam(d.parameters(), lr=o.d_lr, betas=(o.b1, o.b2), eps=o.eps)
    latent, lam, decay = config.model.latent_dim, config.penalty.weight, config.ema.decay

    def step(real):  # real [n_critic, B, 4, L]
        for x in real:
            with torch.no_grad():
                fake = g(torch.randn(batch, latent))
            eps = torch.rand(batch, 1, 1)
            mix = (eps * x + (1 - eps) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(d(mix).sum(), mix, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            d_loss = d(fake).mean() - d(x).mean() + lam * penalty
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
        g_loss = -d(g(torch.randn(batch, latent))).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        with torch.no_grad():
            for e, p in zip(g_ema.parameters(), g.parameters()):
                e.lerp_(p, 1 - decay)
        return d_loss.detach()

    return step


def main(argv=None) -> int:
    """Times the peer and writes its JSON."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=os.path.join(ROOT, 'configs', 'dna_wgan_gp.py'))
    p.add_argument('--length', type=int, default=64)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--mode', choices=('eager', 'compile'), default='eager')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--json', required=True)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_lib.load_config_file(args.config)
    check_config(config)
    m = config.model
    torch.manual_seed(0)
    block = dict(blocks=m.res_blocks, kernel=m.kernel_size, scale=m.res_scale)
    g = Generator(m.latent_dim, m.g_features, args.length, **block)
    d = Critic(m.d_features, args.length, **block)
    g_ema = Generator(m.latent_dim, m.g_features, args.length, **block)
    g_ema.load_state_dict(g.state_dict())
    step = make_step(config, g, d, g_ema, args.batch)
    if args.mode == 'compile':
        step = torch.compile(step)
    rng = np.random.default_rng(0)
    bases = rng.integers(0, 4, size=(config.train.n_critic, args.batch, args.length))
    real = torch.from_numpy(np.eye(4, dtype=np.float32)[bases]).permute(0, 1, 3, 2).contiguous()
    t0 = time.perf_counter()
    step(real)  # first call (compiles under torch.compile)
    first_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        step(real)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = step(real)
        float(loss)
        times.append(time.perf_counter() - t)
    median = float(np.median(times))
    n = args.batch * config.train.n_critic
    record = {'mode': args.mode, 'batch_size': args.batch, 'length': args.length,
              'torch_version': torch.__version__, 'torch_threads': torch.get_num_threads(),
              'first_call_s': first_s, 'step_s_median': median,
              'step_s_min': float(np.min(times)), 'steps_per_sec': 1 / median,
              'sequences_per_sec': n / median, 'timed_steps': args.steps,
              'g_parameters': sum(t.numel() for t in g.parameters()),
              'd_parameters': sum(t.numel() for t in d.parameters())}
    with open(args.json, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=2)
    print(f"torch {args.mode} batch {args.batch}: {record['sequences_per_sec']:.1f} sequences/s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
