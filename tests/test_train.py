"""End to end: a run writes everything, resumes bit-exactly, and fails cleanly on bad input."""

import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ganjax import compose, run_dir, summaries
from ganjax import train as train_lib
from ganjax.cli import main
from ganjax.errors import ConfigError, NonFiniteError
from util import ROOT, tiny_config


def _mnist_config(**overrides):
    config = tiny_config('dcgan', **overrides)
    config.data.name = 'mnist_5k'
    config.train.log_every = 1
    config.train.sample_every = 2
    config.train.checkpoint_every = 2
    config.train.num_samples = 9
    return config


def test_run_writes_checkpoints_samples_metrics_and_plot(tmp_path):
    workdir = str(tmp_path / 'run')
    state = train_lib.train_and_evaluate(_mnist_config(), workdir)
    assert int(state.step) == 4
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
    samples = sorted(os.listdir(os.path.join(workdir, 'samples')))
    assert samples == ['step_0000002.png', 'step_0000004.png']
    grid = np.asarray(Image.open(os.path.join(workdir, 'samples', samples[-1])))
    assert grid.shape == (3 * 30 + 2, 3 * 30 + 2)  # 3x3 tiles of 28 pixels, 2-pixel gaps
    records = summaries.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    assert [r['step'] for r in records] == [1, 2, 3, 4]
    assert {'d_loss', 'g_loss', 'penalty', 'd_grad_norm'} <= set(records[0])
    assert 'steps_per_sec' in records[1]
    assert os.path.getsize(os.path.join(workdir, 'losses.png')) > 1000
    events = os.listdir(os.path.join(workdir, 'tensorboard'))
    assert any(name.startswith('events.out.tfevents') for name in events)
    with open(os.path.join(workdir, 'run_info.json')) as f:
        assert json.load(f)['data_shape'] == [28, 28, 1]

    # The sample command reads the run back.
    out = str(tmp_path / 'grid.png')
    assert main(['sample', '--workdir', workdir, '--num', '4', '--out', out]) == 0
    assert np.asarray(Image.open(out)).shape == (2 * 30 + 2, 2 * 30 + 2)

    # Running the same config again resumes a complete run: nothing new is trained.
    again = train_lib.train_and_evaluate(_mnist_config(), workdir)
    chex.assert_trees_all_equal(again, state)


def test_resume_is_bit_exact(tmp_path):
    straight = train_lib.train_and_evaluate(_mnist_config(), str(tmp_path / 'a'))
    first = _mnist_config()
    first.train.num_steps = 2
    stopped = str(tmp_path / 'b')
    train_lib.train_and_evaluate(first, stopped)
    resumed = train_lib.train_and_evaluate(_mnist_config(), stopped)  # num_steps may grow
    chex.assert_trees_all_equal(resumed, straight)
    a = summaries.read_jsonl(str(tmp_path / 'a' / 'metrics.jsonl'))
    b = summaries.read_jsonl(os.path.join(stopped, 'metrics.jsonl'))
    assert [r['d_loss'] for r in a] == [r['d_loss'] for r in b]


def _assert_trees_close(actual, expected, rtol=1e-4):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        assert np.linalg.norm(a - e) <= rtol * max(np.linalg.norm(e), 1e-2)


def test_a_run_resumes_on_another_device_layout(tmp_path):
    # One device, host data, one step per call: the reference.
    straight = train_lib.train_and_evaluate(
        _mnist_config(data__batch_size=8, data__on_device='never', train__num_steps=4),
        str(tmp_path / 'a'))
    # Steps 1-2 sharded over 8 devices with 2 steps per call and the data on the devices...
    first = _mnist_config(data__batch_size=8, data__on_device='always', train__num_steps=2,
                          parallel__num_devices=8, train__steps_per_call=2)
    stopped = str(tmp_path / 'b')
    train_lib.train_and_evaluate(first, stopped)
    # ... then steps 3-4 under pmap over 4 devices, host data: the same run.
    second = _mnist_config(data__batch_size=8, data__on_device='never', train__num_steps=4,
                           parallel__num_devices=4, parallel__strategy='pmap')
    resumed = train_lib.train_and_evaluate(second, stopped)
    assert int(resumed.step) == 4
    _assert_trees_close(resumed, straight)
    a = summaries.read_jsonl(str(tmp_path / 'a' / 'metrics.jsonl'))
    b = summaries.read_jsonl(os.path.join(stopped, 'metrics.jsonl'))
    np.testing.assert_allclose([r['d_loss'] for r in b], [r['d_loss'] for r in a], rtol=1e-4)


def test_a_run_with_another_config_is_refused(tmp_path):
    workdir = str(tmp_path / 'run')
    config = _mnist_config()
    config.train.num_steps = 2
    train_lib.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
        saved = f.read()
    other = _mnist_config(loss__name='hinge')
    with pytest.raises(ConfigError, match="loss.name: 'non_saturating' in the run, 'hinge' now"):
        train_lib.train_and_evaluate(other, workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
        assert f.read() == saved


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_make = compose.make_train_step

    def make_poisoned(config, gan, **kwargs):
        step = real_make(config, gan, **kwargs)

        def poisoned(state, batch):
            state, metrics = step(state, batch)
            bad = state.step >= 3
            metrics['d_loss'] = jnp.where(bad, jnp.nan, metrics['d_loss'])
            return state, metrics

        return poisoned

    monkeypatch.setattr(compose, 'make_train_step', make_poisoned)
    workdir = str(tmp_path / 'run')
    config = _mnist_config()
    config.train.num_steps = 8
    with pytest.raises(NonFiniteError, match=r'step 3: d_loss is nan.*last good checkpoint '
                                             r'\(step 2\) is kept'):
        train_lib.train_and_evaluate(config, workdir)
    assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['2']
    _, _, state = run_dir.load_run(workdir)
    assert int(state.step) == 2
    for leaf in jax.tree.leaves(state):
        assert np.all(np.isfinite(np.asarray(leaf, np.float32)))


def test_corrupt_image_is_one_clear_error_and_no_run_is_created(tmp_path, capsys):
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((20, 20), i * 40, np.uint8)).save(folder / f'ok{i}.png')
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    workdir = tmp_path / 'run'
    status = main(['train', '--config', os.path.join(ROOT, 'configs', 'dcgan_mnist.py'),
                   '--workdir', str(workdir), '--config.data.name=image_folder',
                   f'--config.data.path={folder}', '--config.data.image_size=16'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and 'broken.png' in err[0]
    assert not workdir.exists()


def test_missing_dataset_is_one_clear_error(tmp_path, capsys):
    status = main(['train', '--config', os.path.join(ROOT, 'configs', 'dcgan_mnist.py'),
                   '--workdir', str(tmp_path / 'run'), '--config.data.name=tfds',
                   '--config.data.tfds_name=mnist', f'--config.data.data_dir={tmp_path / "tfds"}'])
    err = capsys.readouterr().err
    assert status == 1
    # One message (it spans a few lines: the commands that prepare the dataset), no traceback.
    assert err.count('ganjax: error:') == 1 and 'Traceback' not in err
    assert "'mnist'" in err and 'download_and_prepare' in err


def test_nan_in_a_table_is_one_clear_error(tmp_path, capsys):
    table = tmp_path / 'expression.csv'
    table.write_text('g1,g2,label\n0.5,1.0,0\n0.1,nan,1\n')
    status = main(['train', '--config', os.path.join(ROOT, 'configs', 'dcgan_mnist.py'),
                   '--workdir', str(tmp_path / 'run'), '--config.model.arch=mlp',
                   '--config.data.name=csv', f'--config.data.path={table}'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and 'expression.csv' in err[0] and 'g2' in err[0]


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir = str(tmp_path / 'run')
    overrides = ['--config.model.g_features=4', '--config.model.d_features=4',
                 '--config.model.latent_dim=8', '--config.data.batch_size=4',
                 '--config.train.num_steps=100000', '--config.train.checkpoint_every=100000',
                 '--config.train.log_every=1', '--config.parallel.num_devices=1']
    # The process sends itself SIGTERM after step 3 (no timing involved).
    env = dict(os.environ, **{run_dir.KILL_AT_ENV: 'after_step:3:TERM'})
    proc = subprocess.run(
        [sys.executable, '-m', 'ganjax', 'train', '--config',
         os.path.join(ROOT, 'configs', 'dcgan_mnist.py'), '--workdir', workdir] + overrides,
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert 'SIGTERM: checkpoint of step 3 written' in text
    assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['3']
    _, _, state = run_dir.load_run(workdir)
    assert int(state.step) == 3
