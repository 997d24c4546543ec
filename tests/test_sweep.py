"""`ganjax sweep`: expanding the sweep section, training a population in one program, members
equal to their runs alone, frozen divergence, export / sample of a member, and crash consistency."""

import json
import os
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from ganjax import config as config_lib, run_dir, summaries, sweep as sweep_lib
from ganjax.cli import main
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state, make_train_step
from util import ROOT, random_batch, tiny_config

# A tiny MLP on the 8-Gaussian ring: 3 variants x 2 seeds = 6 members in one program. The members
# differ in seed, learning rates and loss; 'boom' (learning rates 1e30) diverges at once.
_ARGS = ['--config', os.path.join(ROOT, 'configs', 'mlp_ring8.py'),
         '--config.model.latent_dim=8', '--config.model.g_features=16',
         '--config.model.d_features=16', '--config.model.mlp_layers=2',
         '--config.data.batch_size=32', '--config.data.prefetch=0',
         '--config.train.num_steps=7', '--config.train.steps_per_call=1',
         '--config.train.log_every=2', '--config.train.checkpoint_every=3',
         '--config.train.sample_every=3', '--config.train.keep_checkpoints=2',
         '--config.train.num_samples=16', '--config.train.progress=false',
         '--config.eval.every=3', '--config.eval.num_samples=64', '--config.eval.batch_size=32',
         '--config.eval.best_metric=fid', '--config.parallel.num_devices=1',
         '--config.sweep.seeds=(0, 1)',
         "--config.sweep.variants=('ns: loss.name=non_saturating optim.g_lr=1e-3', "
         "'hinge: loss.name=hinge optim.g_lr=3e-4 optim.d_lr=1e-3', "
         "'boom: optim.g_lr=1e30 optim.d_lr=1e30')"]
_TIMING = ('steps_per_sec', 'examples_per_sec')
_SOLO_MEMBER = 3  # hinge, seed 1


def _sweep(workdir, *extra) -> int:
    return main(['sweep', '--workdir', str(workdir)] + _ARGS + list(extra))


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    # Adam's first moment of a bias is a near-cancelling sum: an absolute 1e-6 per element.
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 0.1 * np.sqrt(b.size))


def _assert_close_states(a, b, tol=1e-5):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        if np.issubdtype(np.asarray(y).dtype, np.floating):
            assert _rel_err(x, y) < tol, jax.tree_util.keystr(path)
        else:
            np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def _member_files(workdir, index):
    folder = os.path.join(workdir, 'members', f'{index:03d}')
    metrics = [{k: v for k, v in r.items() if k not in _TIMING}
               for r in summaries.read_jsonl(os.path.join(folder, 'metrics.jsonl'))]
    record = run_dir.read_member_record(folder)
    return {'metrics': metrics,
            'eval': summaries.read_jsonl(os.path.join(folder, 'eval', 'history.jsonl')),
            'best.json': run_dir.read_best_record(folder),
            'samples': sorted(os.listdir(os.path.join(folder, 'samples')))
            if os.path.isdir(os.path.join(folder, 'samples')) else [],
            'step': record['step'], 'diverged_at': record['diverged_at']}


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """An uninterrupted sweep of the tiny config."""
    workdir = tmp_path_factory.mktemp('sweep') / 'run'
    assert _sweep(workdir) == 0
    return str(workdir)


def test_the_sweep_trains_every_member_and_freezes_the_diverging_ones(reference):
    with open(os.path.join(reference, 'sweep.json'), encoding='utf-8') as f:
        listing = json.load(f)
    assert [m['variant'] for m in listing['members']] == ['ns', 'ns', 'hinge', 'hinge', 'boom',
                                                          'boom']
    assert [m['seed'] for m in listing['members']] == [0, 1] * 3
    assert listing['groups'] == [{'index': 0, 'members': list(range(6)),
                                  'loss_names': ['non_saturating', 'hinge']}]
    for i in range(6):
        files = _member_files(reference, i)
        if i < 4:
            assert files['step'] == 7 and files['diverged_at'] is None
            assert [r['step'] for r in files['metrics']] == [2, 4, 6, 7]
            assert [r['step'] for r in files['eval']] == [3, 6, 7]
            assert files['samples'] == ['step_0000003.png', 'step_0000006.png',
                                        'step_0000007.png']
        else:
            # Diverged at the first step: frozen at the initial state, nothing logged after it.
            assert files['diverged_at'] == 1 and files['step'] == 0
            assert files['metrics'] == [] and files['eval'] == []
            _, _, state = run_dir.load_run(os.path.join(reference, 'members', f'{i:03d}'))
            assert int(state.step) == 0
            for leaf in jax.tree.leaves(state):
                assert np.all(np.isfinite(leaf))
    # Members really differ.
    a = run_dir.load_run(os.path.join(reference, 'members', '000'))[2]
    b = run_dir.load_run(os.path.join(reference, 'members', '001'))[2]
    assert _rel_err(a.g_params['out']['kernel'], b.g_params['out']['kernel']) > 0.1


@pytest.fixture(scope='module')
def solo(reference, tmp_path_factory):
    """Member _SOLO_MEMBER's own config trained alone by `ganjax train`."""
    workdir = str(tmp_path_factory.mktemp('solo') / 'run')
    config = run_dir.load_workdir_config(os.path.join(reference, 'members',
                                                      f'{_SOLO_MEMBER:03d}'))
    assert not sweep_lib.is_sweep(config)
    assert config.loss.name == 'hinge' and config.seed == 1
    assert config.optim.g_lr == pytest.approx(3e-4) and config.optim.d_lr == pytest.approx(1e-3)
    from ganjax import train as train_lib
    train_lib.train_and_evaluate(config, workdir)
    return workdir


def test_a_member_ends_equal_to_its_run_alone(reference, solo):
    member = os.path.join(reference, 'members', f'{_SOLO_MEMBER:03d}')
    _, _, got = run_dir.load_run(member)
    _, _, want = run_dir.load_run(solo)
    _assert_close_states(got, want)
    # Its records too: the same steps, values equal to float32 rounding.
    for name in ('metrics.jsonl', os.path.join('eval', 'history.jsonl')):
        mine = summaries.read_jsonl(os.path.join(member, name))
        alone = summaries.read_jsonl(os.path.join(solo, name))
        assert [r['step'] for r in mine] == [r['step'] for r in alone]
        for r, s in zip(mine, alone):
            for key in set(s) - set(_TIMING):
                np.testing.assert_allclose(r[key], s[key], rtol=1e-3, atol=1e-5, err_msg=key)
    assert run_dir.read_best_record(member)['step'] == run_dir.read_best_record(solo)['step']


def test_an_exported_member_resumes_like_its_run_alone(reference, solo, tmp_path):
    out = str(tmp_path / 'exported')
    assert main(['export', '--workdir', reference, '--member', str(_SOLO_MEMBER),
                 '--out', out]) == 0
    assert not os.path.exists(os.path.join(out, 'member.json'))
    assert run_dir.checkpoint_steps(out) == [7]
    # Both continue to step 9 with `ganjax train --workdir` alone.
    resumed_solo = str(tmp_path / 'solo')
    import shutil
    shutil.copytree(solo, resumed_solo)
    for workdir in (out, resumed_solo):
        assert main(['train', '--workdir', workdir, '--config.train.num_steps=9']) == 0
    _assert_close_states(run_dir.load_run(out)[2], run_dir.load_run(resumed_solo)[2])
    steps = [[r['step'] for r in summaries.read_jsonl(os.path.join(w, 'metrics.jsonl'))]
             for w in (out, resumed_solo)]
    assert steps[0] == steps[1] == [2, 4, 6, 7, 8, 9]
    # A non-empty --out is refused.
    assert main(['export', '--workdir', reference, '--member', '0', '--out', out]) == 2


def test_sample_and_eval_a_member(reference, tmp_path, capsys):
    out = str(tmp_path / 'x.npy')
    assert main(['sample', '--workdir', reference, '--member', '2', '--num', '10',
                 '--out', out]) == 0
    x = np.load(out)
    assert x.shape == (10, 2) and np.all(np.isfinite(x))
    # The same as the member's folder.
    out2 = str(tmp_path / 'y.npy')
    assert main(['sample', '--workdir', os.path.join(reference, 'members', '002'), '--num', '10',
                 '--out', out2]) == 0
    np.testing.assert_array_equal(x, np.load(out2))
    assert main(['sample', '--workdir', reference, '--member', '17', '--out', out]) == 2
    assert 'no sweep member 17' in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize('kill_at', [
    'during_best:3',        # member 0's best committed, the other members not yet evaluated
    'after_checkpoint:7',   # the final checkpoint committed, its evaluations not recorded
    'after_step:5:TERM',    # SIGTERM between checkpoints
])
def test_a_killed_sweep_resumes_to_the_files_of_an_uninterrupted_one(tmp_path, reference,
                                                                     kill_at):
    workdir = str(tmp_path / 'run')
    env = dict(os.environ, **{run_dir.KILL_AT_ENV: kill_at})
    killed = subprocess.run([sys.executable, '-m', 'ganjax', 'sweep', '--workdir', workdir]
                            + _ARGS, env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=600, check=False)
    assert killed.returncode == (0 if kill_at.endswith('TERM') else -9), killed.stderr[-2000:]
    assert main(['sweep', '--workdir', workdir]) == 0
    for i in range(6):
        assert _member_files(workdir, i) == _member_files(reference, i), f'member {i}'
        folder, ref_folder = (os.path.join(w, 'members', f'{i:03d}') for w in (workdir,
                                                                              reference))
        chex.assert_trees_all_equal(run_dir.load_run(folder)[2], run_dir.load_run(ref_folder)[2])
        if i < 4:
            chex.assert_trees_all_equal(run_dir.load_run(folder, best=True)[2],
                                        run_dir.load_run(ref_folder, best=True)[2])


def test_expanding_variants_settings_and_seeds():
    config = tiny_config('mlp')
    config.sweep.seeds = (3, 4)
    config.sweep.variants = ('ns: loss.name=non_saturating',
                             'wgan: loss.name=wasserstein penalty.name=wgan_gp train.n_critic=2')
    config.sweep.grid = ('optim.g_lr=1e-4,2e-4', 'optim.b1=0.0,0.5')
    config.sweep.random = ('optim.d_lr=log_uniform(1e-5,1e-3)', 'ema.decay=choice(0.99,0.999)')
    config.sweep.num_random = 3
    members = sweep_lib.expand(config)
    assert len(members) == 2 * 4 * 3 * 2
    assert [m.seed for m in members[:4]] == [3, 4, 3, 4]
    # The wgan variant needs its own program (a penalty and 2 critic steps); the rest share one.
    assert {m.group for m in members if m.variant == 'ns'} == {0}
    assert {m.group for m in members if m.variant == 'wgan'} == {1}
    d_lrs = sorted({m.setting['optim.d_lr'] for m in members})
    assert len(d_lrs) == 3 and all(1e-5 <= v <= 1e-3 for v in d_lrs)
    assert {m.setting['ema.decay'] for m in members} <= {0.99, 0.999}
    m = members[-1]
    assert m.config.penalty.name == 'wgan_gp' and m.config.train.n_critic == 2
    assert m.config.optim.g_lr == m.setting['optim.g_lr'] and m.config.seed == 4
    assert not sweep_lib.is_sweep(m.config)
    # Deterministic in sweep.random_seed.
    again = sweep_lib.expand(config)
    assert [x.overrides for x in again] == [x.overrides for x in members]


@pytest.mark.parametrize('field, value, message', [
    ('variants', ('no colon here',), "expected 'NAME: key=value"),
    ('variants', ('a: loss.name=hinge', 'a: loss.name=hinge'), 'listed twice'),
    ('variants', ('a: loss.nmae=hinge',), "unknown config key 'loss.nmae'"),
    ('variants', ('a: loss.name=nope',), "loss.name='nope' is not one of"),
    ('grid', ('data.batch_size=8,16',), 'data.batch_size cannot vary across a sweep'),
    ('grid', ('optim.g_lr=fast',), 'expected a float'),
    ('random', ('optim.g_lr=log_uniform(0,1)',), 'log_uniform needs LOW > 0'),
    ('random', ('optim.g_lr=gauss(1,2)',), 'expected log_uniform'),
    ('seeds', (1, 1), 'lists a seed twice'),
])
def test_bad_sweep_sections_are_one_clear_error(field, value, message):
    config = tiny_config('mlp')
    config.sweep[field] = value
    if field == 'random':
        config.sweep.num_random = 2
    with pytest.raises(ConfigError, match=message.replace('(', r'\(').replace(')', r'\)')):
        sweep_lib.expand(config)


def test_hyperparameter_keys_leave_the_program_unchanged():
    """Two members that differ in every key of HPARAM_KEYS trace to the same program (the
    grouping relies on it)."""
    a = tiny_config('mlp')
    b = tiny_config('mlp', seed=5, loss__name='hinge', optim__g_lr=1e-3, optim__d_lr=3e-3,
                    optim__b1=0.1, optim__b2=0.9, optim__eps=1e-6, optim__weight_decay=0.01,
                    penalty__weight=2.0, ema__decay=0.9, loss__class_weight=0.5, augment__p=0.5,
                    optim__optimism=0.5)
    changed = {k for k, _ in config_lib.diff(a, b).items()}
    assert changed == set(sweep_lib.HPARAM_KEYS)
    assert sweep_lib.program_key(a) == sweep_lib.program_key(b)
    names = ('non_saturating', 'hinge')
    programs = []
    for config in (a, b):
        gan = build_gan(config, (2,), loss_names=names)
        state = create_state(config, gan)
        programs.append(str(jax.make_jaxpr(make_train_step(config, gan))(
            state, random_batch(config, (2,)))))
    assert programs[0] == programs[1]
    assert sweep_lib.program_key(tiny_config('mlp', train__n_critic=2)) != \
        sweep_lib.program_key(a)


def test_train_refuses_a_sweep_config(tmp_path, capsys):
    assert main(['train', '--workdir', str(tmp_path / 'run')] + _ARGS) == 2
    assert 'train its population with `ganjax sweep`' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'run')


def test_a_sweep_whose_members_all_diverge_stops_and_resumes(tmp_path, capsys):
    workdir = str(tmp_path / 'run')
    boom = "--config.sweep.variants=('boom: optim.g_lr=1e30 optim.d_lr=1e30',)"
    assert _sweep(workdir, boom) == 0
    assert 'every member diverged' in capsys.readouterr().out
    # Its checkpoint is at the program's step (2: step 1's metrics are read while step 2 runs),
    # ahead of the frozen members' own steps (0); resuming finds it, with nothing to train.
    assert run_dir.checkpoint_steps(workdir) == [2]
    assert main(['sweep', '--workdir', workdir]) == 0
    for i in range(2):
        record = run_dir.read_member_record(os.path.join(workdir, 'members', f'{i:03d}'))
        assert record['diverged_at'] == 1 and record['step'] == 0
