"""The `ganjax` command on bad input: one line naming the problem, a non-zero exit, and nothing
created or changed. Every case fails before anything compiles."""

import errno
import json
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganjax import cli, images
from ganjax import config as config_lib
from ganjax.checkpoint import Checkpointer
from ganjax.cli import main
from ganjax.summaries import MetricsWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RING = os.path.join(ROOT, 'configs', 'mlp_ring8.py')


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert 'Traceback' not in captured.err and not captured.out.strip()
    return lines[0]


def _tree(path) -> dict:
    """Every file under `path` with its bytes: what a refused command must leave as it was."""
    out = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, 'rb') as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


@pytest.fixture
def fake_run(tmp_path):
    """A run folder with its config and complete checkpoints at steps 10 and 20.

    The checkpoints hold a stand-in pytree: the commands tested here must refuse before restoring.
    """
    workdir = tmp_path / 'run'
    workdir.mkdir()
    (workdir / 'config.json').write_text(config_lib.to_json(config_lib.default_config()))
    ckpt = Checkpointer(str(workdir / 'checkpoints'))
    for step in (10, 20):
        ckpt.save(step, {'w': np.zeros(2, np.float32)}, data_position=step)
    ckpt.close()
    return workdir


def test_workdir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / 'notes.txt'
    path.write_text('mine')
    assert main(['train', '--config', RING, '--workdir', str(path)]) == 1
    line = _one_line(capsys)
    assert str(path) in line and 'is a file, not a folder' in line
    assert path.read_text() == 'mine' and os.listdir(tmp_path) == ['notes.txt']


def test_workdir_under_a_file(tmp_path, capsys):
    (tmp_path / 'notes.txt').write_text('mine')
    assert main(['train', '--config', RING, '--workdir', str(tmp_path / 'notes.txt' / 'run')]) == 1
    assert 'notes.txt, which is a file' in _one_line(capsys)
    assert os.listdir(tmp_path) == ['notes.txt']


def test_workdir_without_write_permission(tmp_path, capsys, monkeypatch):
    # Tests may run as root, whom permission bits do not stop: the kernel's answer is simulated.
    readonly = str(tmp_path / 'readonly')
    os.mkdir(readonly)
    real_access = os.access
    monkeypatch.setattr(cli.os, 'access', lambda p, mode: (
        False if os.path.abspath(p) == readonly else real_access(p, mode)))
    workdir = os.path.join(readonly, 'runs', 'a')
    assert main(['train', '--config', RING, '--workdir', workdir]) == 1
    assert f'no permission to write in {readonly}' in _one_line(capsys)
    assert os.listdir(readonly) == []


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into a read-only folder')
def test_workdir_without_write_permission_for_real(tmp_path, capsys):
    readonly = tmp_path / 'readonly'
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        assert main(['train', '--config', RING, '--workdir', str(readonly / 'a')]) == 1
        assert 'no permission to write' in _one_line(capsys)
        assert os.listdir(readonly) == []
    finally:
        readonly.chmod(0o755)


@pytest.mark.parametrize('command', [
    ['train'], ['train', '--config', RING], ['sample', '--out', 'x.png'], ['eval']],
    ids=['train', 'train_config', 'sample', 'eval'])
def test_corrupt_config_json(tmp_path, capsys, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / 'run'
    workdir.mkdir()
    (workdir / 'config.json').write_text('{"seed": 0,\n  "data": {"batch_size": 64')
    before = _tree(tmp_path)
    assert main(command[:1] + ['--workdir', str(workdir)] + command[1:]) == 2
    line = _one_line(capsys)
    assert f'{workdir}/config.json is not valid JSON' in line and 'line 2' in line
    assert _tree(tmp_path) == before


def test_config_json_with_a_wrongly_typed_value(tmp_path, capsys):
    workdir = tmp_path / 'run'
    workdir.mkdir()
    (workdir / 'config.json').write_text(json.dumps({'data': {'batch_size': '64'}}))
    assert main(['train', '--workdir', str(workdir)]) == 2
    line = _one_line(capsys)
    assert "data.batch_size='64' is a str; expected a int" in line and 'config.json' in line


@pytest.mark.parametrize('command', [['sample', '--out', 'x.png'], ['eval']])
def test_step_that_does_not_exist_names_those_that_do(fake_run, capsys, command, monkeypatch):
    monkeypatch.chdir(fake_run.parent)
    before = _tree(fake_run.parent)
    assert main(command[:1] + ['--workdir', str(fake_run), '--step', '7'] + command[1:]) == 1
    line = _one_line(capsys)
    assert '--step 7' in line and 'has steps 10, 20' in line
    assert _tree(fake_run.parent) == before


def test_best_without_a_best_checkpoint(fake_run, capsys):
    out = fake_run.parent / 'best.png'
    assert main(['sample', '--workdir', str(fake_run), '--best', '--out', str(out)]) == 1
    assert 'has no best checkpoint' in _one_line(capsys)
    assert not out.exists() and not (fake_run / 'best').exists()


def test_run_without_checkpoints(tmp_path, capsys):
    workdir = tmp_path / 'run'
    workdir.mkdir()
    (workdir / 'config.json').write_text(config_lib.to_json(config_lib.default_config()))
    assert main(['eval', '--workdir', str(workdir)]) == 1
    assert 'has no checkpoint yet' in _one_line(capsys)
    assert os.listdir(workdir) == ['config.json']


def test_sample_of_a_missing_workdir(tmp_path, capsys):
    assert main(['sample', '--workdir', str(tmp_path / 'nope'), '--out',
                 str(tmp_path / 'x.png')]) == 1
    assert 'nope does not exist' in _one_line(capsys)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('out, expected', [('samples.gif2', "'.gif2'"),
                                           ('samples.JPG2', "'.jpg2'")])
def test_sample_refuses_an_unknown_extension(fake_run, capsys, out, expected):
    # (A name without extension is a folder of samples: tests/test_sample.py.)
    path = fake_run.parent / out
    assert main(['sample', '--workdir', str(fake_run), '--out', str(path)]) == 2
    line = _one_line(capsys)
    assert f'unknown extension {expected}' in line and '.jpg' in line and '.npz' in line
    assert not path.exists()


@pytest.mark.parametrize('name, fmt', [('a.png', 'PNG'), ('b.JPG', 'JPEG'), ('c.jpeg', 'JPEG'),
                                       ('d.webp', 'WEBP'), ('e.tif', 'TIFF'), ('f.bmp', 'BMP')])
def test_pictures_are_written_in_the_format_their_extension_names(tmp_path, name, fmt):
    picture = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    images.save_image(picture, str(tmp_path / name))
    with Image.open(tmp_path / name) as img:
        assert img.format == fmt and img.size == (12, 8)
    assert os.listdir(tmp_path) == [name]  # no temporary file left


def test_save_image_refuses_an_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r'\.png, \.jpg'):
        images.save_image(np.zeros((4, 4, 3), np.uint8), str(tmp_path / 'x.xyz'))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('sig, status, message', [
    ('SIGTERM', 143, 'ganjax: stopped by SIGTERM (the same command resumes'),
    ('SIGINT', 130, 'ganjax: interrupted by Ctrl-C (the same command resumes')])
@pytest.mark.parametrize('swallowed', [False, True], ids=['plain', 'inside_except'])
def test_signal_before_the_training_loop_is_one_line(tmp_path, sig, status, message, swallowed):
    # The signal arrives while the config file is read, seconds before the loop would install
    # its own handler: a controlled point, no timing. `inside_except` sends it where an exception
    # would be swallowed, as in the garbage collector's callbacks (jax has one): the process must
    # still stop.
    (tmp_path / 'configs').symlink_to(os.path.join(ROOT, 'configs'))
    kill = f'os.kill(os.getpid(), signal.{sig})'
    if swallowed:
        kill = f'try:\n        {kill}\n    except BaseException:\n        pass'
    (tmp_path / 'stop.py').write_text(
        'import os\nimport signal\n\nfrom configs import default\n\n\n'
        'def get_config():\n'
        f'    {kill}\n'
        '    return default.get_config()\n')
    workdir = tmp_path / 'run'
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, '-m', 'ganjax', 'train', '--config',
                           str(tmp_path / 'stop.py'), '--workdir', str(workdir)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert not workdir.exists()


def test_main_restores_the_signal_handlers(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    main(['train', '--config', RING, '--workdir', str(tmp_path / 'run'),
          '--config.optim.b1=5'])
    capsys.readouterr()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_undefined_eval_metric_is_a_note_not_a_tensorboard_warning(tmp_path, caplog):
    # kl_to_uniform is NaN when no sample lies near a mode (ganjax.metrics.modes).
    writer = MetricsWriter(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        writer.write_eval(20, {'fid': 4.3, 'kl_to_uniform': float('nan')})
    writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    with open(tmp_path / 'eval' / 'history.jsonl', encoding='utf-8') as f:
        record = json.loads(f.read())
    assert record['fid'] == 4.3 and np.isnan(record['kl_to_uniform'])


def test_missing_tfds_dataset_is_ganjax_error_alone(tmp_path, capsys, caplog):
    # A data_dir with a version folder but no prepared files: tfds logs absl warnings about it
    # before ganjax's own error, which already says what to do.
    (tmp_path / 'cifar10' / '3.0.2').mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        status = main(['train', '--config', os.path.join(ROOT, 'configs', 'dcgan_cifar10.py'),
                       '--workdir', str(tmp_path / 'run'), f'--config.data.data_dir={tmp_path}'])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("ganjax: error: tfds dataset 'cifar10'"), err
    assert 'not prepared' in err
    assert not [r for r in caplog.records if r.name == 'absl'], caplog.text
    assert not (tmp_path / 'run').exists()


def test_a_full_disk_is_one_line_naming_the_file(monkeypatch, capsys):
    def full(args, extra):
        raise OSError(errno.ENOSPC, 'No space left on device', '/runs/a/metrics.jsonl')

    monkeypatch.setattr(cli, '_eval', full)
    assert main(['eval', '--workdir', '/runs/a']) == 1
    assert _one_line(capsys) == 'ganjax: error: No space left on device: /runs/a/metrics.jsonl'


def test_corrupt_run_info(fake_run, capsys):
    (fake_run / 'run_info.json').write_text('{"data_shape": [2')
    before = _tree(fake_run)
    assert main(['sample', '--workdir', str(fake_run), '--out', str(fake_run / 'x.png')]) == 1
    line = _one_line(capsys)
    assert 'run_info.json is not valid JSON' in line and 'ganjax train --workdir' in line
    assert _tree(fake_run) == before
