"""`ganjax report` on sweep folders written by hand: values over seeds worked out by hand, the
best setting (in each metric's direction, diverged seeds ranked last and never the best), the
plots the markdown links, and one-line errors. Nothing here compiles."""

import json
import math
import os
import re

import numpy as np
import pytest
from PIL import Image

from ganjax import config as config_lib
from ganjax import report
from ganjax.cli import main

EVAL_STEPS = (500, 1000, 1500, 2000)
S1 = {'optim.g_lr': 0.0001, 'optim.d_lr': 0.0004}
S2 = {'optim.g_lr': 0.0002, 'optim.d_lr': 0.0002}


def _sweep_config(best_metric: str, data: str, variants: list) -> dict:
    config = json.loads(config_lib.to_json(config_lib.default_config()))
    config['data']['name'] = data
    config['eval']['every'] = 500
    config['eval']['best_metric'] = best_metric
    config['train']['num_steps'] = 2000
    config['sweep'] = {'seeds': 3, 'variants': variants,
                       'grid': {'optim.g_lr': [1e-4, 2e-4], 'optim.d_lr': [2e-4, 4e-4]}}
    return config


def _write_jsonl(path, records) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def _make_sweep(root, config: dict, members: list, searched: list) -> str:
    """Writes a sweep folder as `ganjax sweep` does.

    Args:
      root: the folder to create.
      config: the sweep's config.json.
      members: dicts with variant, setting, seed, and `evals` (the list of evaluation records,
        possibly empty), optionally diverged_at and `logs` (metrics.jsonl records).
      searched: the searched keys.
    """
    root = str(root)
    os.makedirs(root)
    with open(os.path.join(root, 'config.json'), 'w', encoding='utf-8') as f:
        json.dump(config, f)
    entries = []
    for index, m in enumerate(members):
        folder = f'members/{index:03d}'
        overrides = {'loss.name': m['variant'], **m['setting'], 'seed': m['seed']}
        entry = {'index': index, 'dir': folder, 'variant': m['variant'], 'setting': m['setting'],
                 'seed': m['seed'], 'group': 0, 'overrides': overrides}
        entries.append(entry)
        path = os.path.join(root, folder)
        os.makedirs(os.path.join(path, 'samples'))
        member_config = json.loads(json.dumps(config))
        del member_config['sweep']
        member_config['loss']['name'] = m['variant']
        with open(os.path.join(path, 'config.json'), 'w', encoding='utf-8') as f:
            json.dump(member_config, f)
        diverged_at = m.get('diverged_at')
        with open(os.path.join(path, 'member.json'), 'w', encoding='utf-8') as f:
            json.dump({**{k: entry[k] for k in ('index', 'variant', 'setting', 'seed', 'group')},
                       'step': 2000, 'diverged_at': diverged_at}, f)
        logs = m.get('logs') or [
            {'step': s, 'd_loss': 1.0 + index / 100 + 100 / s, 'g_loss': 2.0 - 100 / s,
             'd_real': 0.5, 'd_fake': 0.5} for s in range(100, 2001, 100)]
        _write_jsonl(os.path.join(path, 'metrics.jsonl'), logs)
        if m['evals']:
            _write_jsonl(os.path.join(path, 'eval', 'history.jsonl'), m['evals'])
        for step in (1000, 2000):
            Image.fromarray(np.full((8, 8, 3), index * 10 % 256, np.uint8)).save(
                os.path.join(path, 'samples', f'step_{step:07d}.png'))
    variants = list(dict.fromkeys(m['variant'] for m in members))
    with open(os.path.join(root, 'sweep.json'), 'w', encoding='utf-8') as f:
        json.dump({'members': entries, 'searched': searched, 'variants': variants,
                   'groups': [{'index': 0, 'members': list(range(len(members))),
                               'loss_names': variants}]}, f)
    return root


def _history(fid: float, precision: float) -> list:
    """Evaluations ending at `fid` and `precision`: the best FID during training is fid - 3, the
    best precision precision + 0.05 (at step 1500). Keys without a goal ride along."""
    fids = (fid + 30, fid + 10, fid - 3, fid)
    precisions = (precision - 0.3, precision - 0.1, precision + 0.05, precision)
    return [{'step': s, 'fid': f, 'kid': f / 1000, 'precision': p, 'recall': 0.5,
             'fid_std': 0.4, 'fid_class_3': 99.0} for s, f, p in zip(EVAL_STEPS, fids, precisions)]


@pytest.fixture
def mnist_sweep(tmp_path):
    """2 variants x 2 settings x 3 seeds on digits, with final FIDs:

        non_saturating S1: 30, 32, (no evaluation)   S2: 20, 24, 22
        hinge          S1: 25, 27, 10 (diverged)     S2: 24, 26, 28

    hinge S1 has the lower mean (20.67), but a seed diverged there (after its step-1000
    evaluation, FID 10; a later record must be ignored), so S2 is hinge's best setting. Both
    members of a third variant, boom, diverged at step 1, before any evaluation.
    """
    members = []
    finals = {('non_saturating', 0): (30, 32, None), ('non_saturating', 1): (20, 24, 22),
              ('hinge', 0): (25, 27, 'diverged'), ('hinge', 1): (24, 26, 28)}
    precisions = (0.6, 0.7, 0.8)
    for variant in ('non_saturating', 'hinge'):
        for k, setting in enumerate((S1, S2)):
            for seed, fid in enumerate(finals[variant, k]):
                m = {'variant': variant, 'setting': setting, 'seed': seed}
                if fid is None:
                    m['evals'] = []
                elif fid == 'diverged':
                    m['evals'] = [{'step': 500, 'fid': 40.0, 'kid': 0.04, 'precision': 0.3,
                                   'recall': 0.2},
                                  {'step': 1000, 'fid': 10.0, 'kid': 0.01, 'precision': 0.9,
                                   'recall': 0.6},
                                  {'step': 1500, 'fid': 5.0, 'kid': 0.005, 'precision': 0.95,
                                   'recall': 0.7}]
                    m['diverged_at'] = 1200
                    m['logs'] = [{'step': s, 'd_loss': 1.0 if s < 1200 else float('nan'),
                                  'g_loss': 2.0 if s < 1200 else float('nan')}
                                 for s in range(100, 2001, 100)]
                else:
                    m['evals'] = _history(float(fid), precisions[seed])
                members.append(m)
    nan = float('nan')
    members += [{'variant': 'boom', 'setting': S1, 'seed': seed, 'evals': [], 'diverged_at': 1,
                 'logs': [{'step': 1, 'd_loss': nan, 'g_loss': nan}]} for seed in (0, 1)]
    return _make_sweep(tmp_path / 'study', _sweep_config('fid', 'mnist_5k',
                                                         ['non_saturating', 'hinge', 'boom']),
                       members, ['optim.d_lr', 'optim.g_lr'])


def _close(a, b) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_values_over_seeds_and_best_setting(mnist_sweep):
    s = report.summarise(mnist_sweep)
    assert s.metric == 'fid'  # the sweep config's eval.best_metric
    assert s.metrics == ['fid', 'kid', 'precision', 'recall']  # no fid_std, fid_class_3
    ns, hinge = s.settings['non_saturating'], s.settings['hinge']
    # Settings sorted by key: optim.d_lr 0.0002 (S2) before 0.0004 (S1).
    assert [dict(r.setting) for r in ns] == [S2, S1]
    ns_s2, ns_s1 = ns
    hinge_s2, hinge_s1 = hinge

    # non_saturating S2: finals 20, 24, 22 -> mean 22, sample std 2, best 20 (seed 0).
    f = ns_s2.final['fid']
    assert (f.n, f.mean, f.std, f.best, f.best_seed) == (3, 22.0, 2.0, 20.0, 0)
    # Best during training: fid - 3 -> 17, 21, 19.
    b = ns_s2.best['fid']
    assert (b.n, b.mean, b.std, b.best, b.best_seed) == (3, 19.0, 2.0, 17.0, 0)
    # Precision improves upwards: finals 0.6, 0.7, 0.8, best 0.8 (seed 2); during training +0.05.
    p = ns_s2.final['precision']
    assert _close(p.mean, 0.7) and _close(p.std, 0.1) and _close(p.best, 0.8)
    assert p.best_seed == 2
    assert _close(ns_s2.best['precision'].best, 0.85)
    # non_saturating S1: seed 2 has no evaluation -> n = 2, mean 31, std sqrt(2).
    f = ns_s1.final['fid']
    assert (f.n, f.mean, f.best) == (2, 31.0, 30.0) and _close(f.std, math.sqrt(2))
    assert s.best['non_saturating'] is ns_s2

    # hinge S1: the diverged seed's final value is its last evaluation before step 1200 (10, not
    # the 5 recorded after it); it counts in the mean but is never the best seed.
    diverged = hinge_s1.members[2]
    assert diverged.diverged and diverged.final('fid') == 10.0 and diverged.best('fid') == 10.0
    f = hinge_s1.final['fid']
    assert _close(f.mean, 62 / 3) and _close(f.std, float(np.std([25, 27, 10], ddof=1)))
    assert (f.n, f.best, f.best_seed, hinge_s1.num_diverged) == (3, 25.0, 0, 1)
    # ... and S1's lower mean does not win: a setting where a seed diverged ranks last.
    assert s.best['hinge'] is hinge_s2
    assert hinge_s2.final['fid'].mean == 26.0
    # boom has no value: no best setting.
    assert s.best['boom'] is None and s.settings['boom'][0].num_diverged == 2

    # kid ranks the same way: --metric kid keeps the best settings.
    k = report.summarise(mnist_sweep, metric='kid')
    assert k.metrics[0] == 'kid' and k.best['hinge'].setting == hinge_s2.setting
    assert _close(k.best['non_saturating'].final['kid'].mean, 0.022)


def test_max_metric_chooses_highest(tmp_path):
    """On a 2D mixture, modes_covered improves upwards and chooses the other setting than fid."""
    def evals(fid, modes, kl):
        return [{'step': 500, 'fid': fid + 1, 'modes_covered': modes - 2, 'high_quality': 0.5,
                 'kl_to_uniform': 1.0},
                {'step': 1000, 'fid': fid, 'modes_covered': modes, 'high_quality': 0.8,
                 'kl_to_uniform': kl}]
    rows = [({'optim.d_lr': 1e-4}, 0, 1.0, 5, 0.5), ({'optim.d_lr': 1e-4}, 1, 1.2, 7, 0.3),
            ({'optim.d_lr': 1e-3}, 0, 2.0, 8, 0.1), ({'optim.d_lr': 1e-3}, 1, 2.2, 8, math.nan)]
    # A searched pair (JSON list) is a setting value too.
    rows += [({'optim.d_lr': 1e-3, 'optim.betas': [0.5, 0.999]}, 0, 3.0, 2, 1.0)]
    members = [{'variant': 'hinge', 'setting': st, 'seed': seed, 'evals': evals(f, m, kl)}
               for st, seed, f, m, kl in rows]
    workdir = _make_sweep(tmp_path / 'ring', _sweep_config('', 'ring8', ['hinge']), members,
                          ['optim.d_lr'])
    s = report.summarise(workdir)  # eval.best_metric '' -> fid
    assert s.metric == 'fid' and s.best['hinge'].setting == (('optim.d_lr', 1e-4),)
    assert _close(s.best['hinge'].final['fid'].mean, 1.1)
    s = report.summarise(workdir, metric='modes_covered')
    assert s.best['hinge'].setting == (('optim.d_lr', 1e-3),)
    at = {dict(r.setting).get('optim.betas', r.setting[0][1]): r for r in s.settings['hinge']}
    assert at[(0.5, 0.999)].final['modes_covered'].mean == 2.0
    f = at[1e-4].final['modes_covered']  # d_lr 1e-4: 5, 7
    assert (f.mean, f.best, f.best_seed) == (6.0, 7.0, 1)
    # kl_to_uniform is undefined (NaN) at seed 1's last evaluation: left out, n = 1.
    kl = at[1e-3].final['kl_to_uniform']
    assert (kl.n, kl.mean, kl.std) == (1, 0.1, None)
    assert at[1e-3].best['kl_to_uniform'].best == 0.1
    assert s.metrics == ['modes_covered', 'fid', 'high_quality', 'kl_to_uniform']
    path = report.write_report(workdir, metric='modes_covered')
    text = open(path, encoding='utf-8').read()
    assert 'modes_covered (higher is better)' in text and 'betas=(0.5, 0.999), d_lr=0.001' in text
    assert os.path.isfile(os.path.join(workdir, 'report', 'modes_covered_by_setting.png'))


def _links(text: str) -> list:
    return re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text)


def test_report_files_and_links(mnist_sweep, tmp_path, capsys):
    assert main(['report', '--workdir', mnist_sweep]) == 0
    out = os.path.join(mnist_sweep, 'report.md')
    assert capsys.readouterr().out.strip() == f'[ganjax] wrote {out}'
    text = open(out, encoding='utf-8').read()
    links = _links(text)
    for name in ('fid_by_variant.png', 'fid_over_training.png', 'fid_by_setting.png',
                 'precision_by_variant.png', 'recall_over_training.png', 'losses.png',
                 'sample_hinge.png', 'sample_non_saturating.png'):
        assert f'report/{name}' in links
    pictures = os.path.join(mnist_sweep, 'report')
    assert sorted(os.listdir(pictures)) == sorted(os.path.basename(p) for p in links)
    for link in links:
        assert not os.path.isabs(link)
        with Image.open(os.path.join(mnist_sweep, link)) as picture:
            assert picture.format == 'PNG'
    # The numbers of the hand-worked test, as the tables show them.
    assert ('| non_saturating | d_lr=0.0002, g_lr=0.0002 | 3 | 0 | 22 ± 2 | 20 (seed 0) | 19 ± 2 '
            '| 17 (seed 0) |') in text
    assert '0: 25, 1: 27, 2: 10†' in text
    assert '20.67 ± 9.292 (1†)' in text  # hinge S1 in the all-settings table
    assert '0: 30, 1: 32, 2: – | 31 ± 1.414 (n=2) |' in text
    assert 'fid_std' not in text and 'fid_class' not in text
    assert 'No evaluations yet' not in text
    assert '| boom | – | 2 | 2 | – |' in text
    assert 'No member of boom has a value of fid yet (2 members, 2 diverged at steps 1, 1).' in text
    # The sample of hinge's best setting is seed 0's last picture (member 9, step 2000).
    assert 'Samples of member 9 (seed 0) at step 2000' in text



def test_sweep_without_evaluations(tmp_path):
    members = [{'variant': v, 'setting': st, 'seed': seed, 'evals': []}
               for v in ('non_saturating', 'least_squares') for st in (S1, S2) for seed in (0, 1)]
    workdir = _make_sweep(tmp_path / 'fresh', _sweep_config('fid', 'mnist_5k', []), members,
                          ['optim.d_lr', 'optim.g_lr'])
    s = report.summarise(workdir, metric='kid')  # a known metric is fine with no evaluations
    assert s.metrics == [] and all(b is None for b in s.best.values())
    path = report.write_report(workdir)
    text = open(path, encoding='utf-8').read()
    assert '**No evaluations yet**' in text and '## Training losses' in text
    assert _links(text) == ['report/losses.png']
    assert os.path.isfile(os.path.join(workdir, 'report', 'losses.png'))
    # --out elsewhere: pictures beside it, links relative to it.
    other = tmp_path / 'docs' / 'fresh_study.md'
    assert report.write_report(workdir, out=str(other)) == str(other)
    assert _links(other.read_text(encoding='utf-8')) == ['fresh_study/losses.png']
    assert (tmp_path / 'docs' / 'fresh_study' / 'losses.png').is_file()
    # Last d_loss of members 0 and 1 (setting S1 of non_saturating: d_lr 0.0004 sorts second):
    # 1 + index/100 + 100/2000 -> 1.05 and 1.06.
    assert '| non_saturating | d_lr=0.0004, g_lr=0.0001 | 2 | 2000 | 1.055 ± 0.007071 |' in text


def _error(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in captured.err and not captured.out, captured
    return code, lines[0]


def test_errors(mnist_sweep, tmp_path, capsys):
    missing = str(tmp_path / 'nope')
    assert _error(capsys, ['report', '--workdir', missing]) == (
        1, f'ganjax: error: --workdir {missing} does not exist')
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'metrics.jsonl').write_text('{"step": 1, "d_loss": 1.0}\n')
    code, line = _error(capsys, ['report', '--workdir', str(run)])
    assert code == 1 and f'{run} is not a sweep: it has no sweep.json' in line
    assert 'single run' in line
    (run / 'sweep.json').write_text('{"members": 3}')
    code, line = _error(capsys, ['report', '--workdir', str(run)])
    assert code == 1 and f'{run / "sweep.json"} has no list of members' in line

    code, line = _error(capsys, ['report', '--workdir', mnist_sweep, '--metric', 'fdi'])
    assert code == 2 and line.startswith('ganjax: config error: --metric fdi is not a metric')
    assert 'did you mean fid' in line
    code, line = _error(capsys, ['report', '--workdir', mnist_sweep, '--metric', 'fid_std'])
    assert code == 2 and '--metric fid_std is not a metric' in line
    code, line = _error(capsys, ['report', '--workdir', mnist_sweep, '--metric', 'density'])
    assert code == 1 and line == (f'ganjax: error: --metric density: no evaluation in '
                                  f'{mnist_sweep} records it; they record fid, kid, precision, '
                                  'recall')
    config_path = os.path.join(mnist_sweep, 'config.json')
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    config['eval']['best_metric'] = 'coverage'
    with open(config_path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    code, line = _error(capsys, ['report', '--workdir', mnist_sweep])
    assert code == 1 and line.startswith('ganjax: error: the default --metric coverage (the '
                                         "sweep's eval.best_metric, else fid): no evaluation in")
    member = os.path.join(mnist_sweep, 'members', '003', 'member.json')
    with open(member, 'a', encoding='utf-8') as f:
        f.write('}')
    code, line = _error(capsys, ['report', '--workdir', mnist_sweep, '--metric', 'fid'])
    assert code == 1 and line.startswith(f'ganjax: error: {member} is not valid JSON (')
    code, line = _error(capsys, ['report', '--workdir', mnist_sweep, '--out', 'x.txt'])
    assert code == 2 and '--out x.txt: give a markdown file name ending in .md' in line
    assert not os.path.exists(os.path.join(mnist_sweep, 'report.md'))
