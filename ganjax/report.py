"""The report of a sweep (a population study): `ganjax report --workdir DIR`.

A loss variant is compared at its best hyperparameters, with the spread over seeds, as in Lucic
et al. 2018, "Are GANs Created Equal? A Large-Scale Study" (https://arxiv.org/abs/1711.10337):
for every variant, the setting (grid point or random sample of the searched hyperparameters)
with the best mean over seeds of the final primary metric is chosen, and the mean, standard
deviation and best over its seeds of every metric, final and best during training, are reported.

It reads the folder that `ganjax sweep` writes and nothing else (it trains and evaluates
nothing), so it can also report on a sweep that is still running:

    DIR/config.json            the sweep's config (eval.best_metric: the default primary metric)
    DIR/sweep.json             {"members": [{"index", "dir", "variant", "setting", "seed", ...}],
                                "searched": [...], "variants": [...]}
    DIR/members/NNN/           member.json (step, diverged_at), metrics.jsonl,
                               eval/history.jsonl, samples/step_*.png

    write_report('runs/study')          # -> 'runs/study/report.md', pictures in runs/study/report/
"""

import dataclasses
import json
import math
import os
import re
import shutil
from typing import Any

import numpy as np

from ganjax import summaries
from ganjax.errors import ConfigError, GanjaxError, closest_hint
from ganjax.metrics.goals import METRIC_GOALS

#: The training-loss keys of metrics.jsonl that the report summarises.
LOSS_KEYS = ('d_loss', 'g_loss')

_DIVERGED = '†'


@dataclasses.dataclass
class Member:
    """One member of a sweep, as its files record it.

    Attributes:
      index: its index in sweep.json.
      path: its folder.
      variant: the loss variant it trains.
      setting: the searched hyperparameters, (key, value) pairs sorted by key (() if none).
      seed: its seed.
      step: the steps it trained (member.json), None if not recorded yet.
      diverged_at: the step whose update went non-finite (the member was frozen there), or None.
      evals: its evaluations up to its divergence, by step.
      logs: its metrics.jsonl records up to its divergence, by step.
      overrides: every config key its config changes from the sweep's (variant, setting, seed).
    """
    index: int
    path: str
    variant: str
    setting: tuple
    seed: int
    step: int | None
    diverged_at: int | None
    evals: list
    logs: list
    overrides: dict = dataclasses.field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """Whether the member diverged (and was frozen)."""
        return self.diverged_at is not None

    def final(self, metric: str) -> float | None:
        """The metric at the member's last evaluation that records it (for a diverged member the
        last one at or before its divergence); None if no evaluation records it or its value
        there is not finite (e.g. kl_to_uniform when no sample lies near a mode)."""
        for record in reversed(self.evals):
            if metric in record:
                return _finite(record[metric])
        return None

    def best(self, metric: str) -> float | None:
        """The best finite value of the metric over the member's evaluations, or None."""
        values = [v for v in (_finite(r.get(metric)) for r in self.evals) if v is not None]
        if not values:
            return None
        return min(values) if METRIC_GOALS[metric] == 'min' else max(values)

    def curve(self, key: str, records: list) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of `key` over `records` (its evals or logs), finite values only."""
        pairs = [(r['step'], _finite(r.get(key))) for r in records]
        pairs = [(s, v) for s, v in pairs if v is not None]
        return (np.array([s for s, _ in pairs], np.int64), np.array([v for _, v in pairs]))


@dataclasses.dataclass
class Stats:
    """A metric over the seeds of one setting.

    Attributes:
      n: how many seeds have a value.
      mean: their mean (None if n == 0).
      std: their sample standard deviation, n - 1 in the denominator (None if n < 2).
      best: the best value over the seeds that did not diverge (None if every one diverged).
      best_seed: the seed of `best`.
    """
    n: int
    mean: float | None
    std: float | None
    best: float | None
    best_seed: int | None


@dataclasses.dataclass
class SettingResult:
    """The members of one variant at one setting, over seeds.

    Attributes:
      variant: the loss variant.
      setting: (key, value) pairs, as `Member.setting`.
      members: the members, by seed.
      final: metric -> Stats of the members' final values.
      best: metric -> Stats of the members' best values during training.
    """
    variant: str
    setting: tuple
    members: list
    final: dict
    best: dict

    @property
    def num_diverged(self) -> int:
        """How many of its seeds diverged."""
        return sum(m.diverged for m in self.members)


@dataclasses.dataclass
class Summary:
    """What a report says about a sweep (`summarise`).

    Attributes:
      workdir: the sweep's folder.
      config: its config.json as a plain dict.
      metric: the primary metric.
      metrics: the metrics of METRIC_GOALS that its evaluations record, primary first.
      variants: the variants, in the config's order.
      searched: the searched hyperparameter keys.
      members: every member, by index.
      settings: variant -> its SettingResults, in setting order.
      best: variant -> its best SettingResult (None when no setting has a value of `metric`).
    """
    workdir: str
    config: dict
    metric: str
    metrics: list
    variants: list
    searched: list
    members: list
    settings: dict
    best: dict

    @property
    def has_evals(self) -> bool:
        """Whether any member has an evaluation."""
        return any(m.evals for m in self.members)


def _finite(value: Any) -> float | None:
    """`value` as a float if it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _hashable(value: Any) -> Any:
    """A JSON value with its lists made tuples (a searched pair such as Adam's betas), so that
    settings can key a dict."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _read_json(path: str, what: str) -> Any:
    """The JSON in `path`, or GanjaxError naming the file."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except ValueError as e:
        raise GanjaxError(f'{path} is not valid JSON ({e}); {what}') from None


def _check_metric(metric: str) -> None:
    if metric not in METRIC_GOALS:
        raise ConfigError(f'--metric {metric} is not a metric ganjax evaluates; use one of '
                          f'{", ".join(METRIC_GOALS)}{closest_hint(metric, METRIC_GOALS)}')


def load_members(workdir: str) -> tuple[dict, dict, list]:
    """Reads a sweep's folder.

    Args:
      workdir: the folder of `ganjax sweep`.

    Returns:
      (config, sweep, members): config.json and sweep.json as dicts, and a Member per entry of
      sweep.json, by index (a member whose folder is not there yet has no records).

    Raises:
      GanjaxError: for a folder that does not exist or is not a sweep, or a sweep file that
        cannot be read.
    """
    if not os.path.exists(workdir):
        raise GanjaxError(f'--workdir {workdir} does not exist')
    if not os.path.isdir(workdir):
        raise GanjaxError(f'--workdir {workdir} is a file, not a folder')
    sweep_path = os.path.join(workdir, 'sweep.json')
    if not os.path.isfile(sweep_path):
        run = os.path.isfile(os.path.join(workdir, 'metrics.jsonl'))
        raise GanjaxError(f'{workdir} is not a sweep: it has no sweep.json (`ganjax sweep` writes '
                          'one)' + ('; it holds a single run, whose curves are in its eval/ and '
                                    'metrics.jsonl' if run else ''))
    sweep = _read_json(sweep_path, 'it is written by `ganjax sweep`')
    if not isinstance(sweep, dict) or not isinstance(sweep.get('members'), list) or not all(
            isinstance(m, dict) for m in sweep['members']):
        raise GanjaxError(f'{sweep_path} has no list of members ("members": [{{...}}, ...]); '
                          'it is written by `ganjax sweep`')
    config_path = os.path.join(workdir, 'config.json')
    config = (_read_json(config_path, "it records the sweep's config")
              if os.path.isfile(config_path) else {})
    if not isinstance(config, dict):
        raise GanjaxError(f"{config_path} holds no config object; it records the sweep's config")
    default_variant = config.get('loss', {}).get('name', 'default')
    members = []
    for i, entry in enumerate(sweep['members']):
        index = entry.get('index', i)
        path = os.path.join(workdir, entry.get('dir', os.path.join('members', f'{index:03d}')))
        info_path = os.path.join(path, 'member.json')
        info = dict(entry)
        if os.path.isfile(info_path):
            record = _read_json(info_path, 'it is written by `ganjax sweep`')
            if not isinstance(record, dict):
                raise GanjaxError(f'{info_path} holds no member record; it is written by '
                                  '`ganjax sweep`')
            info.update(record)
        diverged_at = info.get('diverged_at')
        before = ((lambda r: r['step'] <= diverged_at) if diverged_at is not None
                  else (lambda r: True))
        evals = sorted(filter(before, summaries.read_jsonl(
            os.path.join(path, 'eval', 'history.jsonl'))), key=lambda r: r['step'])
        logs = sorted(filter(before, summaries.read_jsonl(os.path.join(path, 'metrics.jsonl'))),
                      key=lambda r: r['step'])
        members.append(Member(
            index=index, path=path, variant=str(info.get('variant', default_variant)),
            setting=tuple(sorted((k, _hashable(v))
                                 for k, v in (info.get('setting') or {}).items())),
            seed=info.get('seed', 0), step=info.get('step'), diverged_at=diverged_at,
            evals=evals, logs=logs, overrides=dict(info.get('overrides') or {})))
    return config, sweep, sorted(members, key=lambda m: m.index)


def _stats(members: list, values: list, metric: str | None) -> Stats:
    """Stats of `values` (one per member, None where it has none); `metric` gives the direction
    of `best` (None: no best, e.g. for losses)."""
    have = [(m, v) for m, v in zip(members, values) if v is not None]
    if not have:
        return Stats(0, None, None, None, None)
    array = np.array([v for _, v in have])
    std = float(np.std(array, ddof=1)) if len(array) > 1 else None
    # A diverged member is frozen at its last finite state, whose value may look good: it never
    # counts as the best seed.
    healthy = [(m, v) for m, v in have if not m.diverged]
    if healthy and metric is not None:
        pick = min if METRIC_GOALS[metric] == 'min' else max
        member, best = pick(healthy, key=lambda mv: mv[1])
        return Stats(len(have), float(array.mean()), std, best, member.seed)
    return Stats(len(have), float(array.mean()), std, None, None)


def _setting_order(setting: tuple) -> tuple:
    """Sort key of a setting: by key, then value (numbers before other values)."""
    return tuple((k, 0, v, '') if isinstance(v, (int, float)) else (k, 1, 0, str(v))
                 for k, v in setting)


def _rank(result: SettingResult, metric: str) -> tuple:
    """Sort key choosing the best setting: settings without a value last, then those with fewer
    diverged seeds first, then by the mean final value in the metric's direction."""
    mean = result.final[metric].mean
    if mean is None:
        return (1, 0, 0.0)
    return (0, result.num_diverged, mean if METRIC_GOALS[metric] == 'min' else -mean)


def summarise(workdir: str, metric: str | None = None) -> Summary:
    """Summarises a sweep per variant and setting over seeds.

    Args:
      workdir: the folder of `ganjax sweep`.
      metric: the primary metric, which chooses each variant's best setting (None: the sweep
        config's eval.best_metric, else 'fid').

    Returns:
      The Summary.

    Raises:
      ConfigError: for a metric that ganjax does not evaluate.
      GanjaxError: for a folder that is not a sweep, or a metric that none of its evaluations
        records.
    """
    flag = f'--metric {metric}'
    if metric is not None:
        _check_metric(metric)
    config, sweep, members = load_members(workdir)
    if metric is None:
        metric = config.get('eval', {}).get('best_metric') or 'fid'
        flag = f'the default --metric {metric} (the sweep\'s eval.best_metric, else fid)'
        _check_metric(metric)
    recorded = {k for m in members for r in m.evals for k in r}
    metrics = [k for k in METRIC_GOALS if k in recorded]
    if recorded and metric not in metrics:
        raise GanjaxError(f'{flag}: no evaluation in {workdir} records it; they record '
                          f'{", ".join(metrics) or "no metric ganjax knows"}')
    metrics = ([metric] + [k for k in metrics if k != metric]) if recorded else []
    variants = [str(v) for v in sweep.get('variants') or []]
    variants += sorted({m.variant for m in members} - set(variants))
    by_setting = {}
    for m in sorted(members, key=lambda m: (m.seed, m.index)):
        by_setting.setdefault((m.variant, m.setting), []).append(m)
    settings, best = {}, {}
    for variant in variants:
        results = []
        for key in sorted((k for k in by_setting if k[0] == variant),
                          key=lambda k: _setting_order(k[1])):
            group = by_setting[key]
            results.append(SettingResult(
                variant, key[1], group,
                final={k: _stats(group, [m.final(k) for m in group], k) for k in metrics},
                best={k: _stats(group, [m.best(k) for m in group], k) for k in metrics}))
        settings[variant] = results
        ranked = sorted(results, key=lambda r: _rank(r, metric)) if metrics else []
        best[variant] = ranked[0] if ranked and ranked[0].final[metric].n else None
    searched = list(sweep.get('searched') or sorted({k for m in members for k, _ in m.setting}))
    return Summary(workdir, config, metric, metrics, variants, searched, members, settings, best)


# Markdown.

def _fmt(value: float | None) -> str:
    return '–' if value is None else f'{value:.4g}'


def _mean_std(stats: Stats, seeds: int | None = None) -> str:
    """'mean ± std', with '(n=k)' when only k of `seeds` seeds have a value."""
    if stats.mean is None:
        return '–'
    return (_fmt(stats.mean) + ('' if stats.std is None else f' ± {_fmt(stats.std)}')
            + (f' (n={stats.n})' if seeds is not None and stats.n < seeds else ''))


def _best_seed(stats: Stats) -> str:
    return '–' if stats.best is None else f'{_fmt(stats.best)} (seed {stats.best_seed})'


def _short_names(searched: list) -> dict:
    """key -> its last dotted part, unless two keys share it (then the whole key)."""
    last = [k.rsplit('.', 1)[-1] for k in searched]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(searched, last)}


def _setting_label(setting: tuple, names: dict) -> str:
    if not setting:
        return '(defaults)'
    return ', '.join(f'{names.get(k, k)}={v:.3g}' if isinstance(v, float) and not
                     isinstance(v, bool) else f'{names.get(k, k)}={v}' for k, v in setting)


def _flags(member: Member) -> str:
    """The member's overrides but its seed, as `ganjax train` flags."""
    def text(value):
        if isinstance(value, (list, tuple)):
            return '(' + ','.join(map(str, value)) + ')'
        return str(value)
    return ' '.join(f'--config.{k}={text(v)}' for k, v in sorted(member.overrides.items())
                    if k != 'seed')


def _goal(metric: str) -> str:
    return 'lower is better' if METRIC_GOALS[metric] == 'min' else 'higher is better'


def _seeds_text(members: list) -> str:
    seeds = sorted({m.seed for m in members})
    return ', '.join(map(str, seeds))


def _table(header: list, rows: list) -> list:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]


def _per_seed(result: SettingResult, metric: str) -> str:
    parts = []
    for m in result.members:
        value = m.final(metric)
        parts.append(f'{m.seed}: {_fmt(value)}' + (_DIVERGED if m.diverged else ''))
    return ', '.join(parts)


def _last_losses(member: Member) -> dict:
    """key -> the last finite value of each loss key in the member's logs (None if none)."""
    out = {}
    for key in LOSS_KEYS:
        _, values = member.curve(key, member.logs)
        out[key] = float(values[-1]) if len(values) else None
    return out


# Plots.

def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _colors(variants: list) -> dict:
    plt = _pyplot()
    cycle = plt.get_cmap('tab10')
    return {v: cycle(i % 10) for i, v in enumerate(variants)}


def _band(members: list, key: str, records_of) -> tuple:
    """(steps, mean, low, high) of `key` over `members` at every step any of them records: the
    mean, min and max over the members with a finite value there."""
    table = {}
    for m in members:
        for s, v in zip(*m.curve(key, records_of(m))):
            table.setdefault(int(s), []).append(v)
    steps = np.array(sorted(table))
    if not len(steps):
        return steps, steps, steps, steps
    rows = [np.array(table[s]) for s in steps]
    return (steps, np.array([r.mean() for r in rows]), np.array([r.min() for r in rows]),
            np.array([r.max() for r in rows]))


def _plot_by_variant(summary: Summary, metric: str, path: str) -> bool:
    """Box plot of the final metric per variant at its best setting, every seed a dot."""
    columns = [(v, r) for v, r in summary.best.items() if r is not None and r.final[metric].n]
    if not columns:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(columns) + 2), 3.8), dpi=100)
    colors = _colors(summary.variants)
    ax.boxplot([[m.final(metric) for m in r.members if m.final(metric) is not None]
                for _, r in columns], positions=range(len(columns)), widths=0.5,
               showfliers=False, medianprops={'color': 'black'})
    labelled = False
    for x, (variant, result) in enumerate(columns):
        points = [(m, m.final(metric)) for m in result.members if m.final(metric) is not None]
        # Spread the dots sideways evenly (no randomness: the same sweep draws the same plot).
        offsets = np.linspace(-0.15, 0.15, len(points)) if len(points) > 1 else [0.0]
        for dx, (m, value) in zip(offsets, points):
            if m.diverged:
                ax.scatter(x + dx, value, marker='x', color='crimson', zorder=3,
                           label=None if labelled else 'diverged (value before it)')
                labelled = True
            else:
                ax.scatter(x + dx, value, color=colors[variant], edgecolor='black',
                           linewidth=0.5, zorder=3)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([f'{v}\n(n={r.final[metric].n})' for v, r in columns], fontsize=8)
    ax.set_ylabel(f'final {metric}')
    ax.set_title(f"final {metric} at each variant's best setting,\none dot per seed "
                 f'({_goal(metric)})', fontsize=9)
    if labelled:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis='y')
    summaries._save_figure(fig, path)  # pylint: disable=protected-access
    return True


def _plot_over_training(summary: Summary, metric: str, path: str) -> bool:
    """The metric over training per variant at its best setting: mean over seeds and min–max."""
    plt = _pyplot()
    colors = _colors(summary.variants)
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=100)
    drawn = False
    for variant, result in summary.best.items():
        if result is None:
            continue
        steps, mean, low, high = _band(result.members, metric, lambda m: m.evals)
        if not len(steps):
            continue
        ax.plot(steps, mean, marker='.', color=colors[variant], label=variant)
        ax.fill_between(steps, low, high, color=colors[variant], alpha=0.2, linewidth=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel('step')
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} at each variant's best setting: mean over seeds, band min–max "
                 f'({_goal(metric)})', fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    summaries._save_figure(fig, path)  # pylint: disable=protected-access
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Most settings drawn side by side as categories (beyond, labels are unreadable: a random search
#: of several numeric keys is drawn against each key instead).
_MAX_CATEGORIES = 40


def _plot_by_setting(summary: Summary, path: str) -> bool:
    """The final primary metric per setting and variant: mean ± std over seeds.

    When every searched key is numeric, one panel per key with the key's value on x (log when it
    spans a factor of 4 or more, as learning rates do), lines joining the points when only one
    key is searched; otherwise the settings as categories.
    """
    metric = summary.metric
    keys = []
    for results in summary.settings.values():
        for r in results:
            if r.setting not in keys:
                keys.append(r.setting)
    keys.sort(key=_setting_order)
    if len(keys) < 2:
        return False
    searched = [k for k in summary.searched if any(k in dict(s) for s in keys)]
    numeric = bool(searched) and all(_is_number(v) for s in keys for _, v in s)
    if not numeric and len(keys) > _MAX_CATEGORIES:
        return False
    panels = searched if numeric else [None]
    plt = _pyplot()
    colors = _colors(summary.variants)
    width = 4.5 * len(panels) if numeric else max(6, 0.6 * len(keys) + 3)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6, width), 3.8), dpi=100,
                             squeeze=False)
    names = _short_names(summary.searched)
    for ax, key in zip(axes[0], panels):
        for i, (variant, results) in enumerate(summary.settings.items()):
            if key is None:
                # Categories: shift the variants apart a little so that their error bars do not
                # hide each other.
                shift = 0.06 * (i - (len(summary.settings) - 1) / 2)
                points = [(keys.index(r.setting) + shift, r.final[metric]) for r in results
                          if r.final[metric].n]
            else:
                # Variants sharing a value are set a little apart (by a factor, which keeps
                # them apart on a log axis too) so that their error bars stay visible.
                dodge = 1 + 0.02 * (i - (len(summary.settings) - 1) / 2)
                points = sorted((dict(r.setting)[key] * dodge, r.final[metric])
                                for r in results if r.final[metric].n and key in dict(r.setting))
            if points:
                ax.errorbar([x for x, _ in points], [st.mean for _, st in points],
                            yerr=[st.std or 0.0 for _, st in points], marker='o', capsize=3,
                            color=colors[variant], label=variant,
                            linestyle='-' if key is None or len(panels) == 1 else 'none')
        if key is None:
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels([_setting_label(k, names).replace(', ', '\n') for k in keys],
                               fontsize=7, rotation=30, ha='right')
        else:
            values = [dict(s)[key] for s in keys if key in dict(s)]
            if min(values) > 0 and max(values) / min(values) >= 4:
                ax.set_xscale('log')
            ax.set_xlabel(key)
        ax.set_ylabel(f'final {metric}')
        ax.grid(alpha=0.3)
    fig.suptitle(f'final {metric} per setting: mean ± std over seeds ({_goal(metric)})',
                 fontsize=9)
    axes[0][0].legend(fontsize=8)
    summaries._save_figure(fig, path)  # pylint: disable=protected-access
    return True


def _plot_losses(summary: Summary, path: str) -> bool:
    """D and G losses over training: per variant at its best setting (every setting of every
    variant when there is no best yet), mean over seeds and min–max band."""
    lines = []
    names = _short_names(summary.searched)
    for variant in summary.variants:
        if summary.best.get(variant) is not None:
            lines.append((variant, summary.best[variant].members))
        else:
            multiple = len(summary.settings[variant]) > 1
            lines += [(f'{variant} ({_setting_label(r.setting, names)})' if multiple else variant,
                       r.members) for r in summary.settings[variant]]
    if not any(m.logs for _, members in lines for m in members):
        return False
    plt = _pyplot()
    cycle = plt.get_cmap('tab10')
    fig, axes = plt.subplots(1, len(LOSS_KEYS), figsize=(5 * len(LOSS_KEYS), 3.6), dpi=100)
    for ax, key in zip(axes, LOSS_KEYS):
        for i, (label, members) in enumerate(lines):
            steps, mean, low, high = _band(members, key, lambda m: m.logs)
            if len(steps):
                ax.plot(steps, mean, color=cycle(i % 10), label=label)
                ax.fill_between(steps, low, high, color=cycle(i % 10), alpha=0.2, linewidth=0)
        ax.set_title(f'{key}: mean over seeds, band min–max', fontsize=9)
        ax.set_xlabel('step')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    summaries._save_figure(fig, path)  # pylint: disable=protected-access
    return True


def _last_sample(member: Member) -> tuple[str, int] | None:
    """(path, step) of the member's last sample picture (at or before its divergence)."""
    folder = os.path.join(member.path, 'samples')
    if not os.path.isdir(folder):
        return None
    found = []
    for name in os.listdir(folder):
        match = re.fullmatch(r'step_(\d+)\.png', name)
        if match and (member.diverged_at is None or int(match[1]) <= member.diverged_at):
            found.append((int(match[1]), name))
    if not found:
        return None
    step, name = max(found)
    return os.path.join(folder, name), step


def _file_name(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', text)


# The report.

def write_report(workdir: str, metric: str | None = None, out: str | None = None) -> str:
    """Writes the markdown report of a sweep, with PNG plots beside it.

    Per variant: every setting over seeds; the best setting, chosen by the mean over seeds of the
    final `metric` (settings in which a seed diverged rank after those in which none did); at it,
    the mean, standard deviation and best over seeds of every evaluated metric, final and best
    during training, with the number of seeds and of diverged ones. A table of the primary metric
    over all settings, the training losses, every member, and the plots: the final metric per
    variant over seeds (box and dots), each metric over training (mean and min–max band over
    seeds), the primary metric per setting, the losses, and a sample picture per variant.
    Method: Lucic et al. 2018, "Are GANs Created Equal?" (https://arxiv.org/abs/1711.10337). A
    sweep without evaluations yet gets the loss summary and a note saying so.

    Args:
      workdir: the folder of `ganjax sweep`.
      metric: the primary metric (a key of METRIC_GOALS; None: the sweep config's
        eval.best_metric, else 'fid').
      out: the markdown file (None: WORKDIR/report.md); the pictures go to a folder beside it
        named like it without '.md' (WORKDIR/report/).

    Returns:
      The path of the markdown file written.

    Raises:
      ConfigError: for an unknown metric or an `out` that is not a .md file.
      GanjaxError: for a folder that is not a sweep or a metric that no evaluation records.
    """
    if out is not None and not out.lower().endswith('.md'):
        raise ConfigError(f'--out {out}: give a markdown file name ending in .md')
    summary = summarise(workdir, metric)
    out = out if out is not None else os.path.join(workdir, 'report.md')
    base = os.path.dirname(os.path.abspath(out))
    pictures = os.path.splitext(os.path.abspath(out))[0]
    os.makedirs(pictures, exist_ok=True)

    def picture(name: str) -> tuple[str, str]:
        path = os.path.join(pictures, name)
        return path, os.path.relpath(path, base).replace(os.sep, '/')

    text = _markdown(summary, picture)
    tmp = os.path.abspath(out) + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, out)
    return out


def _markdown(summary: Summary, picture) -> str:
    """The report's text; writes its pictures through `picture(name) -> (path, link)`."""
    s, metric = summary, summary.metric
    names = _short_names(s.searched)
    config = s.config
    lines = [f'# Sweep report: {os.path.basename(os.path.abspath(s.workdir))}', '']
    num_settings = max((len(r) for r in s.settings.values()), default=0)
    lines.append(
        f'{len(s.members)} members: {len(s.variants)} variant'
        f'{"s" if len(s.variants) != 1 else ""} ({", ".join(s.variants)}) x {num_settings} '
        f'setting{"s" if num_settings != 1 else ""}'
        + (f' of {", ".join(s.searched)}' if s.searched else '')
        + f' x seeds {_seeds_text(s.members)}; {sum(m.diverged for m in s.members)} diverged.')
    facts = [f'{k} {v}' for k, v in (
        ('data', config.get('data', {}).get('name')),
        ('model', config.get('model', {}).get('arch')),
        ('steps', config.get('train', {}).get('num_steps')),
        ('eval every', config.get('eval', {}).get('every')),
        ('eval samples', config.get('eval', {}).get('num_samples')),
        ('eval features', config.get('eval', {}).get('features'))) if v is not None]
    if facts:
        lines += ['', 'Config: ' + ', '.join(facts) + '.']
    if isinstance(config.get('sweep'), dict):
        lines += ['', '<details><summary>The sweep section of its config</summary>', '',
                  '```json', json.dumps(config['sweep'], indent=1), '```', '', '</details>']
    if not s.has_evals:
        lines += ['', f'**No evaluations yet**: no member has an eval/history.jsonl record '
                      f'(eval.every = {config.get("eval", {}).get("every", "?")}), so there are '
                      'no metrics to compare; below are the training losses.']
    else:
        lines += ['', '**Method** ([Lucic et al. 2018](https://arxiv.org/abs/1711.10337), "Are '
                      f'GANs Created Equal?"): the primary metric is {metric} ({_goal(metric)}). '
                      "A member's *final* value is its "
                      'last evaluation; a diverged member was frozen at its last finite state, '
                      'and its final value is its last evaluation before it diverged (marked '
                      f'{_DIVERGED}). *Best during training* is the best over a member\'s '
                      'evaluations. Each variant\'s best setting has the best mean over seeds of '
                      f'the final {metric}; settings in which a seed diverged rank after those in '
                      'which none did. "± std" is the sample standard deviation over seeds '
                      '(n − 1); "best" is the best seed among those that did not diverge. Seeds '
                      'without a value (not evaluated yet, or undefined) are left out; n counts '
                      'those with one.']
        lines += _summary_section(s, names, picture)
        for variant in s.variants:
            lines += _variant_section(s, variant, names, picture)
        lines += _settings_section(s, names, picture)
        others = [k for k in s.metrics if k != metric]
        if others:
            lines += ['', '## Other metrics over seeds and training', '',
                      "At each variant's best setting (chosen by "
                      f'{metric}); bands are min–max over seeds.', '']
            for k in others:
                for kind, plot in (('by_variant', _plot_by_variant),
                                   ('over_training', _plot_over_training)):
                    path, link = picture(f'{k}_{kind}.png')
                    if plot(s, k, path):
                        lines.append(f'![{k} {kind.replace("_", " ")}]({link})')
    lines += _losses_section(s, names, picture)
    lines += _members_section(s, names)
    lines += ['', f'Written by `ganjax report --workdir {s.workdir} --metric {metric}`.']
    return '\n'.join(lines) + '\n'


def _summary_section(s: Summary, names: dict, picture) -> list:
    metric = s.metric
    lines = ['', "## Each variant at its best setting", '']
    rows = []
    for variant in s.variants:
        r = s.best[variant]
        if r is None:
            every = [m for x in s.settings[variant] for m in x.members]
            rows.append([variant, '–', len(every), sum(m.diverged for m in every), '–', '–',
                         '–', '–'])
            continue
        final, best = r.final[metric], r.best[metric]
        seeds = len(r.members)
        rows.append([variant, _setting_label(r.setting, names),
                     seeds if final.n == seeds else f'{seeds} ({final.n} evaluated)',
                     r.num_diverged,
                     _mean_std(final), _best_seed(final), _mean_std(best), _best_seed(best)])
    lines += _table(['variant', 'best setting', 'seeds', 'diverged', f'final {metric}',
                     'best seed', f'best-in-training {metric}', 'best seed'], rows)
    for name, plot, alt in (('by_variant', _plot_by_variant, 'per variant over seeds'),
                            ('over_training', _plot_over_training, 'over training')):
        path, link = picture(f'{metric}_{name}.png')
        if plot(s, metric, path):
            lines += ['', f'![{metric} {alt}]({link})']
    lines += ['', 'Box and dots: final value of each seed at the best setting '
                  '(x: a diverged seed). Curves: mean over seeds, band min–max over seeds; a '
                  'diverged seed leaves the band after it diverged.']
    return lines


def _variant_section(s: Summary, variant: str, names: dict, picture) -> list:
    metric = s.metric
    lines = ['', f'## {variant}', '']
    r = s.best[variant]
    if r is None:
        every = [m for x in s.settings[variant] for m in x.members]
        diverged = [m for m in every if m.diverged]
        return lines + [f'No member of {variant} has a value of {metric} yet ({len(every)} '
                        f'members, {len(diverged)} diverged'
                        + (f' at step{"s" if len(diverged) > 1 else ""} '
                           f'{", ".join(str(m.diverged_at) for m in diverged)}'
                           if diverged else '') + ').']
    lines.append(f'Best setting: **{_setting_label(r.setting, names)}** (members '
                 f'{", ".join(str(m.index) for m in r.members)}; seeds {_seeds_text(r.members)}; '
                 f'{r.num_diverged} diverged).')
    if r.setting:
        lines.append('Hyperparameters: ' + ', '.join(f'`{k}={v}`' for k, v in r.setting) + '.')
    flags = _flags(r.members[0])
    if flags:
        lines.append(f'Its overrides of the sweep\'s config (besides the seed): `{flags}`.')
    lines.append('')
    rows = [[k, 'min' if METRIC_GOALS[k] == 'min' else 'max', _mean_std(r.final[k]),
             _fmt(r.final[k].best), _mean_std(r.best[k]), _fmt(r.best[k].best), r.final[k].n]
            for k in s.metrics]
    lines += _table(['metric', 'goal', 'final mean ± std', 'final best',
                     'best-in-training mean ± std', 'best-in-training best', 'n'], rows)
    lines += ['', f'Every setting of {variant}, final {metric} per seed '
                  f'({_DIVERGED}: diverged, value before it):', '']
    rows = [[('**' + _setting_label(x.setting, names) + '**') if x is r
             else _setting_label(x.setting, names), len(x.members), x.num_diverged,
             _per_seed(x, metric), _mean_std(x.final[metric], len(x.members))]
            for x in s.settings[variant]]
    lines += _table(['setting', 'seeds', 'diverged', f'final {metric} by seed',
                     'mean ± std'], rows)
    healthy = [m for m in r.members if not m.diverged] or r.members
    for m in sorted(healthy, key=lambda m: m.seed):
        found = _last_sample(m)
        if found:
            path, link = picture(f'sample_{_file_name(variant)}.png')
            tmp = path + '.tmp.png'
            shutil.copyfile(found[0], tmp)
            os.replace(tmp, path)
            lines += ['', f'Samples of member {m.index} (seed {m.seed}) at step {found[1]}:', '',
                      f'![{variant} samples]({link})']
            break
    return lines


def _settings_section(s: Summary, names: dict, picture) -> list:
    metric = s.metric
    keys = []
    for results in s.settings.values():
        keys += [r.setting for r in results if r.setting not in keys]
    keys.sort(key=_setting_order)
    cells = {(r.variant, r.setting): r for results in s.settings.values() for r in results}
    lines = ['', f'## All settings: final {metric}, mean ± std over seeds', '',
             f'Bold: the variant\'s best setting; (k{_DIVERGED}): k seeds diverged.', '']
    rows = []
    for key in keys:
        row = [_setting_label(key, names)]
        for variant in s.variants:
            r = cells.get((variant, key))
            if r is None:
                row.append('')
                continue
            cell = _mean_std(r.final[metric], len(r.members)) + (
                f' ({r.num_diverged}{_DIVERGED})'
                                                 if r.num_diverged else '')
            row.append(f'**{cell}**' if r is s.best[variant] else cell)
        rows.append(row)
    lines += _table(['setting'] + s.variants, rows)
    path, link = picture(f'{metric}_by_setting.png')
    if _plot_by_setting(s, path):
        lines += ['', f'![{metric} per setting]({link})']
    return lines


def _losses_section(s: Summary, names: dict, picture) -> list:
    lines = ['', '## Training losses', '',
             'Last logged value of each member (before divergence), mean ± std over seeds.', '']
    rows = []
    for variant in s.variants:
        for r in s.settings[variant]:
            last = [_last_losses(m) for m in r.members]
            steps = [m.logs[-1]['step'] for m in r.members if m.logs]
            row = [variant, _setting_label(r.setting, names), len(r.members),
                   max(steps) if steps else '–']
            for key in LOSS_KEYS:
                row.append(_mean_std(_stats(r.members, [x[key] for x in last], None)))
            rows.append(row)
    lines += _table(['variant', 'setting', 'seeds', 'last step'] + list(LOSS_KEYS), rows)
    path, link = picture('losses.png')
    if _plot_losses(s, path):
        lines += ['', f'![training losses]({link})', '',
                  ("At each variant's best setting; " if any(s.best.values()) else '')
                  + 'mean over seeds, band min–max.']
    return lines


def _members_section(s: Summary, names: dict) -> list:
    metric = s.metric
    lines = ['', '## Members', '']
    rows = []
    for m in s.members:
        row = [m.index, m.variant, _setting_label(m.setting, names), m.seed,
               '–' if m.step is None else m.step,
               '–' if m.diverged_at is None else m.diverged_at, len(m.evals)]
        if s.metrics:
            row += [_fmt(m.final(metric)), _fmt(m.best(metric))]
        rows.append(row + [os.path.relpath(m.path, s.workdir).replace(os.sep, '/')])
    header = ['member', 'variant', 'setting', 'seed', 'steps', 'diverged at', 'evaluations']
    if s.metrics:
        header += [f'final {metric}', f'best {metric}']
    return lines + _table(header + ['folder'], rows)
