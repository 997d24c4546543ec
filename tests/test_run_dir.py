"""The run directory stays consistent with the last checkpoint, whatever moment a run is killed at.

The end-to-end tests kill a training subprocess at a named point of the loop
($GANJAX_TEST_KILL_AT, see `ganjax.run_dir.kill_point`: deterministic, no timing), resume it in
this process, and compare every file of the run with an uninterrupted run's.
"""

import glob
import os
import shutil
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from ganjax import checkpoint, config as config_lib, run_dir, summaries
from ganjax.cli import main
from ganjax.errors import ConfigError
from util import ROOT, tiny_config

# A tiny MLP on the 8-Gaussian ring, 7 steps: logs at 2, 4, 6, 7; checkpoints and evaluations at
# 3, 6 and the final 7 (so a checkpoint closes a log window half-way); samples at 3, 6, 7.
_ARGS = ['--config', os.path.join(ROOT, 'configs', 'mlp_ring8.py'),
         '--config.model.latent_dim=8', '--config.model.g_features=16',
         '--config.model.d_features=16', '--config.model.mlp_layers=2',
         '--config.data.batch_size=32', '--config.data.prefetch=0',
         '--config.train.num_steps=7', '--config.train.steps_per_call=1',
         '--config.train.log_every=2', '--config.train.checkpoint_every=3',
         '--config.train.sample_every=3', '--config.train.keep_checkpoints=2',
         '--config.train.num_samples=64', '--config.train.progress=false',
         '--config.eval.every=3', '--config.eval.num_samples=64', '--config.eval.batch_size=32',
         '--config.eval.best_metric=fid', '--config.parallel.num_devices=1']
# Timings differ between any two runs.
_TIMING = ('steps_per_sec', 'examples_per_sec')


def _train(workdir) -> int:
    return main(['train', '--workdir', str(workdir)] + _ARGS)


def _train_killed(workdir, kill_at: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{run_dir.KILL_AT_ENV: kill_at})
    return subprocess.run([sys.executable, '-m', 'ganjax', 'train', '--workdir', str(workdir)]
                          + _ARGS, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def _files(workdir) -> dict:
    """What must be equal between an interrupted and an uninterrupted run."""
    metrics = [{k: v for k, v in r.items() if k not in _TIMING}
               for r in summaries.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))]
    best_ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'best'), read_only=True)
    try:
        best_steps = best_ckpt.all_steps()
    finally:
        best_ckpt.close()
    return {
        'metrics': metrics,
        'eval': summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl')),
        'best.json': run_dir.read_best_record(str(workdir)),
        'best steps': best_steps,
        'samples': sorted(os.listdir(os.path.join(workdir, 'samples'))),
        'checkpoints': sorted(os.listdir(os.path.join(workdir, 'checkpoints'))),
        'orphans': glob.glob(os.path.join(workdir, '**', '*orbax-checkpoint-tmp*'),
                             recursive=True),
    }


def _assert_same_run(workdir, reference):
    assert _files(workdir) == _files(reference)
    _, _, state = run_dir.load_run(str(workdir))
    _, _, expected = run_dir.load_run(str(reference))
    chex.assert_trees_all_equal(state, expected)
    _, _, best = run_dir.load_run(str(workdir), best=True)
    _, _, best_expected = run_dir.load_run(str(reference), best=True)
    chex.assert_trees_all_equal(best, best_expected)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """An uninterrupted run of the tiny config."""
    workdir = tmp_path_factory.mktemp('reference') / 'run'
    assert _train(workdir) == 0
    files = _files(workdir)
    assert [r['step'] for r in files['metrics']] == [2, 4, 6, 7]
    assert [r['step'] for r in files['eval']] == [3, 6, 7]
    assert files['best.json']['step'] in (3, 6, 7)
    return workdir


@pytest.mark.slow
@pytest.mark.parametrize('kill_at', [
    'after_log:2',          # before the first checkpoint: the rerun starts over
    'during_checkpoint:3',  # the checkpoint's write started, maybe not finished
    'during_best:3',        # best/ committed, best.json not yet written
    'after_eval:6',         # evaluation recorded, its checkpoint maybe not committed
    'after_checkpoint:7',   # the final checkpoint committed, its evaluation not recorded
    'after_step:5:TERM',    # SIGTERM between checkpoints: a half log window is checkpointed
])
def test_a_killed_run_resumes_to_the_files_of_an_uninterrupted_one(tmp_path, reference, kill_at):
    workdir = tmp_path / 'run'
    killed = _train_killed(workdir, kill_at)
    sigterm = kill_at.endswith(':TERM')
    assert killed.returncode == (0 if sigterm else -9), killed.stdout + killed.stderr
    if sigterm:
        assert 'SIGTERM: checkpoint of step 5 written' in killed.stdout
    assert _train(workdir) == 0
    _assert_same_run(workdir, reference)


@pytest.mark.slow
def test_sigterm_during_setup_stops_with_a_message_and_leaves_no_run(tmp_path, reference):
    workdir = tmp_path / 'run'
    stopped = _train_killed(workdir, 'setup:0:TERM')
    # The CLI's handler ends the process at once with one line (ganjax.cli._exit_on_signal).
    assert stopped.returncode == 128 + 15, stopped.stdout + stopped.stderr
    assert 'ganjax: stopped by SIGTERM' in stopped.stderr
    assert 'Traceback' not in stopped.stderr
    assert run_dir.checkpoint_steps(str(workdir)) == []
    assert _train(workdir) == 0
    _assert_same_run(workdir, reference)


@pytest.mark.slow
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, reference,
                                                                     capsys):
    workdir = tmp_path / 'run'
    shutil.copytree(reference, workdir)
    # Part of the final checkpoint's array files is gone (a disk full, a partial copy).
    for path in glob.glob(str(workdir / 'checkpoints' / '7' / 'state' / '**' / 'd' / '*'),
                          recursive=True):
        os.remove(path)
    capsys.readouterr()
    assert _train(workdir) == 0
    out = capsys.readouterr().out
    bad = str(workdir / 'checkpoints' / '7')
    assert f'warning: checkpoint {bad} cannot be read' in out
    assert 'resuming' in out and 'from step 6' in out
    assert os.path.isdir(workdir / 'checkpoints' / f'{checkpoint.CORRUPT_PREFIX}7')
    shutil.rmtree(workdir / 'checkpoints' / f'{checkpoint.CORRUPT_PREFIX}7')
    _assert_same_run(workdir, reference)
    with pytest.raises(ConfigError, match='has no checkpoint of step 5; it has steps 6, 7'):
        run_dir.load_run(str(workdir), step=5)


def test_a_garbage_line_does_not_lose_the_valid_lines_after_it(tmp_path):
    path = tmp_path / 'metrics.jsonl'
    path.write_text('{"step": 1, "d_loss": 1.0}\nnot json at all\n{"step": 2, "d_loss": 2.0}\n'
                    '[1, 2]\n{"step": 3, "d_loss": 3.0}\n{"step": 4, "d_lo')
    assert [r['step'] for r in summaries.read_jsonl(str(path))] == [1, 2, 3]
    summaries.truncate_jsonl(str(path), 2)
    assert path.read_text() == '{"step": 1, "d_loss": 1.0}\n{"step": 2, "d_loss": 2.0}\n'


def test_a_workdir_without_checkpoint_holds_no_run_and_binds_no_config(tmp_path):
    # A run that failed before its first checkpoint (a NaN at step 2, a 1-row table) left its
    # config.json: the retry with another config is a new run, not "another config".
    workdir = str(tmp_path / 'run')
    os.makedirs(workdir)
    failed = tiny_config('mlp', data__name='ring8')
    run_dir.write_json_atomic(os.path.join(workdir, 'config.json'), config_lib.to_json(failed))
    retry = tiny_config('mlp', data__name='ring8', loss__name='hinge')
    run_dir.reconcile_config(retry, workdir)
    assert run_dir.load_workdir_config(workdir).loss.name == 'hinge'
    # Once a checkpoint exists, the run is bound to its config.
    os.makedirs(os.path.join(workdir, 'checkpoints', '2'))
    with pytest.raises(ConfigError, match="loss.name: 'hinge' in the run, 'non_saturating' now"):
        run_dir.reconcile_config(failed, workdir)


def test_a_corrupt_config_json_is_one_clear_error(tmp_path):
    (tmp_path / 'config.json').write_text('{"model": {"arch": "mlp"')
    with pytest.raises(ConfigError, match='config.json is not valid JSON'):
        run_dir.load_workdir_config(str(tmp_path))


def test_a_new_run_clears_what_an_attempt_without_checkpoint_left(tmp_path):
    workdir = tmp_path / 'run'
    (workdir / 'samples').mkdir(parents=True)
    (workdir / 'best').mkdir()
    (workdir / 'samples' / 'step_0000002.png').write_bytes(b'png')
    (workdir / 'metrics.jsonl').write_text('{"step": 1}\n{"step": 2}\n')
    (workdir / 'samples' / 'step_0000004.png.tmp').write_bytes(b'half a png')
    (workdir / 'losses.png.tmp.png').write_bytes(b'half a png')
    run_dir.trim_to_checkpoint(str(workdir), None)
    assert (workdir / 'metrics.jsonl').read_text() == ''
    assert sorted(os.listdir(workdir)) == ['metrics.jsonl', 'samples']
    assert not os.listdir(workdir / 'samples') and not (workdir / 'best').exists()
    # On resume from step 2, later records and samples go; earlier ones and best/ stay.
    (workdir / 'best').mkdir()
    (workdir / 'metrics.jsonl').write_text('{"step": 2}\n{"step": 4}\n')
    for step in (2, 4):
        (workdir / 'samples' / f'step_{step:07d}.png').write_bytes(b'png')
    run_dir.trim_to_checkpoint(str(workdir), 2)
    assert (workdir / 'metrics.jsonl').read_text() == '{"step": 2}\n'
    assert os.listdir(workdir / 'samples') == ['step_0000002.png']
    assert (workdir / 'best').exists()


def test_best_json_is_rewritten_from_the_committed_checkpoint_and_orphans_are_cleaned(tmp_path):
    workdir = str(tmp_path)
    state = {'w': np.arange(4, dtype=np.float32)}
    best = run_dir.BestCheckpoint(workdir, 'fid')
    assert best.offer(3, {'fid': 2.0, 'recall': 0.5}, state, data_position=3)
    assert not best.offer(4, {'fid': 2.5, 'recall': 0.6}, state, data_position=4)
    best.close()
    record = run_dir.read_best_record(workdir)
    assert record == {'metric': 'fid', 'value': 2.0, 'step': 3,
                      'metrics': {'fid': 2.0, 'recall': 0.5}}
    # A kill after the checkpoint's commit and before best.json, and one during a later write.
    os.remove(os.path.join(workdir, 'best', 'best.json'))
    orphan = os.path.join(workdir, 'best', '9.orbax-checkpoint-tmp-1234')
    os.makedirs(orphan)
    best = run_dir.BestCheckpoint(workdir, 'fid')
    try:
        assert best.value == 2.0
        assert run_dir.read_best_record(workdir) == record
        assert not os.path.exists(orphan)
    finally:
        best.close()
    restored = checkpoint.Checkpointer(os.path.join(workdir, 'best'), read_only=True)
    try:
        assert restored.all_steps() == [3]
        got, _ = restored.restore(jax.eval_shape(lambda: state))
        np.testing.assert_array_equal(got['w'], state['w'])
    finally:
        restored.close()

