"""The `sweep` section of a config: which members a population study trains, and in which programs.

A sweep trains every combination of

    variants (named override sets, e.g. a loss with its penalty and critic steps)
  x settings (grid points x listed points x random samples of hyperparameters)
  x seeds

as one member each. Members whose configs differ only in what `GANState.hparams` holds (learning
rates, Adam's betas and eps, weight decay, penalty weight, EMA decay, class weight, augmentation
probability, the loss of the loss table, the seed) share one compiled program: their states are
stacked and the step is vmapped over them (`ganjax.population`). Anything else (a penalty,
`train.n_critic`, an architecture, an optimizer) starts another program.

The section, as strings so that it survives JSON and command-line overrides:

    config.sweep.seeds = (0, 1, 2, 3, 4)
    config.sweep.variants = ('ns: loss.name=non_saturating',
                             'wgan_gp: loss.name=wasserstein penalty.name=wgan_gp train.n_critic=5')
    config.sweep.grid = ('optim.g_lr=1e-4,2e-4,4e-4',)          # cartesian product over keys
    config.sweep.points = ('optim.g_lr=1e-4 optim.d_lr=4e-4',)  # listed settings
    config.sweep.random = ('optim.d_lr=log_uniform(1e-5,1e-3)', 'optim.b1=uniform(0,0.9)',
                           'ema.decay=choice(0.99,0.999)')
    config.sweep.num_random = 20   # samples of `random` (Lucic et al. 2018 drew 100 per loss)

A setting's values override a variant's; this module imports no jax.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import random as random_lib
import re
from typing import Any

from ml_collections import ConfigDict

from ganjax import config as config_lib
from ganjax.errors import ConfigError, closest_hint

#: Keys whose values live in `GANState.hparams` (`ganjax.train_step.hparams_from_config`): members
#: that differ only here share a program. `loss.name` is among them because the population's step
#: chooses the loss per member from `hparams['loss_index']`.
HPARAM_KEYS = ('seed', 'loss.name', 'optim.g_lr', 'optim.d_lr', 'optim.b1', 'optim.b2',
               'optim.eps', 'optim.weight_decay', 'optim.optimism', 'penalty.weight',
               'ema.decay', 'loss.class_weight', 'augment.p')

#: Sections and keys a sweep may vary: what is trained. The data, the schedule of logs, samples,
#: checkpoints and evaluations, and the device layout are the sweep's, shared by every member.
_SWEEPABLE_PREFIXES = ('model.', 'loss.', 'penalty.', 'optim.', 'ema.', 'augment.')
_SWEEPABLE_KEYS = ('seed', 'precision', 'train.n_critic', 'train.updates')

_RANDOM = re.compile(r'^(?P<kind>log_uniform|uniform|choice)\((?P<args>.*)\)$')


@dataclasses.dataclass(frozen=True)
class Member:
    """One GAN of a sweep.

    Attributes:
      index: position in the sweep (member directories are numbered by it).
      variant: the variant's name.
      setting: the searched hyperparameters' values (key -> value; {} without a search).
      seed: its seed.
      overrides: every key its config changes from the sweep's (variant, then setting, then seed).
      config: its own config: the sweep's, without sweep keys, with `overrides` applied.
      group: index of the program it trains in (see `group_members`).
    """

    index: int
    variant: str
    setting: dict[str, Any]
    seed: int
    overrides: dict[str, Any]
    config: ConfigDict
    group: int = 0

    @property
    def name(self) -> str:
        """Its directory name under DIR/members."""
        return f'{self.index:03d}'

    def record(self) -> dict[str, Any]:
        """The member as sweep.json lists it."""
        return {'index': self.index, 'dir': f'members/{self.name}', 'variant': self.variant,
                'setting': dict(self.setting), 'seed': self.seed, 'group': self.group,
                'overrides': dict(self.overrides)}


def is_sweep(config: ConfigDict) -> bool:
    """Whether the config's `sweep` section asks for more than one member."""
    s = config.sweep
    return bool(s.variants or s.grid or s.points or s.random or len(s.seeds) > 1)


def _check_key(key: str, flat: dict[str, Any], where: str) -> None:
    if key not in flat:
        raise ConfigError(f'{where}: unknown config key {key!r}{closest_hint(key, flat)}')
    if not (key in _SWEEPABLE_KEYS or key.startswith(_SWEEPABLE_PREFIXES)):
        raise ConfigError(f'{where}: {key} cannot vary across a sweep (its members share the data, '
                          'the schedule of logs, samples, checkpoints and evaluations, and the '
                          'device layout); sweepable: seed, precision, train.n_critic, '
                          'train.updates and the model, loss, penalty, optim, ema and augment '
                          'sections')


def _assignments(text: str, flat: dict[str, Any], where: str) -> dict[str, Any]:
    """'key=value key=value' -> {key: parsed value}."""
    out = {}
    for part in text.split():
        if '=' not in part:
            raise ConfigError(f'{where}: {part!r} is not key=value')
        key, value = part.split('=', 1)
        _check_key(key, flat, where)
        out[key] = config_lib.parse_value(key, value, flat[key], where)
    return out


def parse_variants(config: ConfigDict) -> list[tuple[str, dict[str, Any]]]:
    """`sweep.variants` as [(name, overrides)]; one variant named by `loss.name` if empty.

    Raises:
      ConfigError: for a malformed entry, a duplicate name, or a key that cannot vary.
    """
    flat = config_lib.flatten(config)
    if not config.sweep.variants:
        return [(config.loss.name, {})]
    out, seen = [], set()
    for i, text in enumerate(config.sweep.variants):
        where = f'sweep.variants[{i}]={text!r}'
        name, sep, rest = text.partition(':')
        name = name.strip()
        if not sep or not name or not re.fullmatch(r'[A-Za-z0-9_.+-]+', name):
            raise ConfigError(f"{where}: expected 'NAME: key=value key=value ...' (a name of "
                              'letters, digits, _ . + -)')
        if name in seen:
            raise ConfigError(f'{where}: variant {name!r} is listed twice')
        seen.add(name)
        out.append((name, _assignments(rest, flat, where)))
    return out


def _random_values(spec: str, key: str, count: int, rng: random_lib.Random, current: Any,
                   where: str) -> list[Any]:
    match = _RANDOM.match(spec.replace(' ', ''))
    if not match:
        raise ConfigError(f'{where}: expected log_uniform(LOW,HIGH), uniform(LOW,HIGH) or '
                          'choice(A,B,...)')
    kind, args = match['kind'], [a for a in match['args'].split(',') if a]
    if kind == 'choice':
        if not args:
            raise ConfigError(f'{where}: choice() needs at least one value')
        values = [config_lib.parse_value(key, a, current, where) for a in args]
        return [rng.choice(values) for _ in range(count)]
    if len(args) != 2 or not isinstance(current, (int, float)) or isinstance(current, bool):
        raise ConfigError(f'{where}: {kind}(LOW,HIGH) takes two numbers and a numeric key')
    try:
        low, high = float(args[0]), float(args[1])
    except ValueError:
        raise ConfigError(f'{where}: {args} are not numbers') from None
    if not low < high:
        raise ConfigError(f'{where}: the range needs LOW < HIGH')
    if kind == 'log_uniform':
        if low <= 0:
            raise ConfigError(f'{where}: log_uniform needs LOW > 0')
        values = [math.exp(rng.uniform(math.log(low), math.log(high))) for _ in range(count)]
    else:
        values = [rng.uniform(low, high) for _ in range(count)]
    if isinstance(current, int):
        return [int(round(v)) for v in values]
    return values


def parse_settings(config: ConfigDict) -> list[dict[str, Any]]:
    """The searched settings: grid points x listed points x random samples ([{}] if none).

    Raises:
      ConfigError: for a malformed entry or a key that cannot vary.
    """
    s = config.sweep
    flat = config_lib.flatten(config)
    grid_keys, grid_values = [], []
    for i, text in enumerate(s.grid):
        where = f'sweep.grid[{i}]={text!r}'
        key, sep, values = text.partition('=')
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"{where}: expected 'key=v1,v2,...'")
        _check_key(key, flat, where)
        if key in grid_keys:
            raise ConfigError(f'{where}: {key} is in the grid twice')
        grid_keys.append(key)
        grid_values.append([config_lib.parse_value(key, v.strip(), flat[key], where)
                            for v in values.split(',') if v.strip()])
    settings = [dict(zip(grid_keys, combo)) for combo in itertools.product(*grid_values)]
    if s.points:
        points = [_assignments(text, flat, f'sweep.points[{i}]={text!r}')
                  for i, text in enumerate(s.points)]
        settings = [{**g, **p} for g in settings for p in points]
    if s.random:
        if s.num_random < 1:
            raise ConfigError('sweep.random is set: sweep.num_random must be >= 1 (the number '
                              'of samples)')
        rng = random_lib.Random(int(s.random_seed))
        columns = {}
        for i, text in enumerate(s.random):
            where = f'sweep.random[{i}]={text!r}'
            key, sep, spec = text.partition('=')
            key = key.strip()
            if not sep:
                raise ConfigError(f"{where}: expected 'key=log_uniform(LOW,HIGH)'")
            _check_key(key, flat, where)
            columns[key] = _random_values(spec, key, int(s.num_random), rng, flat[key], where)
        samples = [{k: v[j] for k, v in columns.items()} for j in range(int(s.num_random))]
        settings = [{**g, **r} for g in settings for r in samples]
    elif s.num_random:
        raise ConfigError(f'sweep.num_random={s.num_random} but sweep.random lists nothing to '
                          'sample')
    return settings


def member_config(config: ConfigDict, overrides: dict[str, Any]) -> ConfigDict:
    """A member's own config: the sweep's with `overrides` and an empty sweep section.

    It is the config `ganjax train` would run alone; `ganjax export` writes it with the member.
    """
    out = copy.deepcopy(config)
    out.sweep = config_lib.default_config().sweep
    for key, value in overrides.items():
        node = out
        *parents, leaf = key.split('.')
        for p in parents:
            node = node[p]
        node[leaf] = value
    return out


def expand(config: ConfigDict) -> list[Member]:
    """Every member of the sweep, grouped into programs.

    Args:
      config: a validated config with a `sweep` section.

    Returns:
      The members in order: variants, then settings, then seeds (seed fastest).

    Raises:
      ConfigError: for a malformed section, or a member whose config does not validate (named).
    """
    variants = parse_variants(config)
    settings = parse_settings(config)
    seeds = tuple(int(s) for s in config.sweep.seeds) or (int(config.seed),)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f'sweep.seeds={tuple(config.sweep.seeds)} lists a seed twice')
    members = []
    for (name, variant), setting, seed in itertools.product(variants, settings, seeds):
        overrides = {**variant, **setting, 'seed': seed}
        cfg = member_config(config, overrides)
        try:
            config_lib.validate(cfg)
        except ConfigError as e:
            raise ConfigError(f'sweep member {len(members)} (variant {name}, '
                              f'{_describe(setting)}seed {seed}): {e}') from None
        members.append(Member(len(members), name, setting, seed, overrides, cfg))
    return group_members(members)


def _describe(setting: dict[str, Any]) -> str:
    return ''.join(f'{k}={v}, ' for k, v in setting.items())


def program_key(config: ConfigDict) -> str:
    """What fixes a member's compiled program: its config without the `HPARAM_KEYS` values.

    `loss.weight_clip` counts only as on or off (the bound is a hyperparameter).
    """
    flat = config_lib.flatten(config)
    for key in HPARAM_KEYS:
        flat.pop(key, None)
    flat['loss.weight_clip'] = flat['loss.weight_clip'] > 0
    return json.dumps(flat, sort_keys=True, default=str)


def group_members(members: list[Member]) -> list[Member]:
    """Numbers the programs: members with one `program_key` share a group (first come first)."""
    keys: dict[str, int] = {}
    out = []
    for m in members:
        group = keys.setdefault(program_key(m.config), len(keys))
        out.append(dataclasses.replace(m, group=group))
    return out


def loss_names(members: list[Member]) -> tuple[str, ...]:
    """The losses of a group, in order of first use (the population's `loss_names`)."""
    return tuple(dict.fromkeys(m.config.loss.name for m in members))
