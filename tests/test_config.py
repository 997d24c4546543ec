"""Configs: every file loads, overrides parse by type, and mistakes give one clear message."""

import glob
import os

import pytest

from ganjax import config as config_lib
from ganjax.cli import main
from ganjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def test_there_are_configs():
    names = {os.path.basename(p) for p in CONFIG_FILES}
    assert {'default.py', 'dcgan_mnist.py'} <= names


@pytest.mark.parametrize('path', CONFIG_FILES, ids=os.path.basename)
def test_every_config_loads_validates_and_documents_its_command(path):
    config = config_lib.load_config_file(path)
    config_lib.validate(config)
    with open(path, encoding='utf-8') as f:
        head = f.read(2000)
    assert 'ganjax train --config configs/' in head, 'docstring must give the command'
    assert 'Expected result' in head, 'docstring must give the expected result'


def test_overrides_parse_by_type():
    config = config_lib.default_config()
    config_lib.apply_overrides(config, {'optim.g_lr': '1e-4', 'train.num_steps': '7',
                                        'model.d_spectral_norm': 'true', 'loss.name': 'hinge'})
    assert config.optim.g_lr == 1e-4 and isinstance(config.optim.g_lr, float)
    assert config.train.num_steps == 7
    assert config.model.d_spectral_norm is True
    assert config.loss.name == 'hinge'


@pytest.mark.parametrize('overrides, message', [
    ({'optim.glr': '1e-4'}, "unknown config key.*did you mean optim.g_lr"),
    ({'train.num_steps': '1.5'}, 'expected an int'),
    ({'optim.g_lr': 'fast'}, 'expected a float'),
    ({'model.g_spectral_norm': 'maybe'}, 'expected a bool'),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.apply_overrides(config_lib.default_config(), overrides)


@pytest.mark.parametrize('key, value, message', [
    ('loss.name', 'hinj', "loss.name='hinj' is not one of .*did you mean hinge"),
    ('model.arch', 'gan', 'model.arch'),
    ('data.batch_size', 0, 'data.batch_size must be positive'),
    ('ema.decay', 1.0, 'ema.decay'),
])
def test_validate_names_key_and_choices(key, value, message):
    config = config_lib.default_config()
    section, leaf = key.split('.')
    config[section][leaf] = value
    with pytest.raises(ConfigError, match=message):
        config_lib.validate(config)


def test_unknown_key_in_a_config_file(tmp_path):
    path = tmp_path / 'bad.py'
    path.write_text('from configs import default\n\n'
                    'def get_config():\n'
                    '    c = default.get_config()\n'
                    '    c.optim.lr = 1e-3\n'
                    '    return c\n')
    # The file sits outside the repository: put the repo's configs package on the path.
    (tmp_path / 'configs').symlink_to(os.path.join(ROOT, 'configs'))
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lr'"):
        config_lib.load_config_file(str(path))


def test_json_round_trip():
    config = config_lib.load_config_file(os.path.join(ROOT, 'configs', 'dcgan_mnist.py'))
    again = config_lib.from_json(config_lib.to_json(config))
    assert config_lib.diff(config, again) == {}


def test_cli_reports_a_bad_key_in_one_line(tmp_path, capsys):
    workdir = tmp_path / 'run'
    status = main(['train', '--config', os.path.join(ROOT, 'configs', 'dcgan_mnist.py'),
                   '--workdir', str(workdir), '--config.optim.glr=1e-4'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and 'optim.glr' in err[0] and 'optim.g_lr' in err[0]
    assert not workdir.exists(), 'a rejected config must not create the run directory'


def test_cli_missing_config_file(tmp_path, capsys):
    status = main(['train', '--config', str(tmp_path / 'nope.py'), '--workdir', str(tmp_path)])
    assert status == 2 and 'does not exist' in capsys.readouterr().err
