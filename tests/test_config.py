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
    command = 'ganjax sweep' if config.sweep.variants or len(config.sweep.seeds) > 1 else \
        'ganjax train'
    assert f'{command} --config configs/' in head, 'docstring must give the command'
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


def _cli_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize('override, message', [
    ('optim.b1=5', "optim.b1 must be in [0, 1) (Adam's beta1, SGD's momentum), got 5.0"),
    ('optim.b1=-0.5', 'optim.b1 must be in [0, 1)'),
    ('optim.b2=1', "optim.b2 must be in [0, 1) (Adam's beta2, RMSProp's decay), got 1.0"),
    ('optim.eps=0', 'optim.eps must be positive, got 0.0'),
    ('optim.weight_decay=-1e-4', 'optim.weight_decay must be >= 0, got -0.0001'),
    ('optim.g_lr=nan', 'optim.g_lr=nan is not a finite number'),
    ('penalty.weight=inf', 'penalty.weight=inf is not a finite number'),
    ('model.mlp_layers=0', 'model.mlp_layers must be positive, got 0'),
    ('data.eval_fraction=1', 'data.eval_fraction must be in [0, 1)'),
    ('parallel.process_id=-2', 'parallel.process_id must be >= 0, or -1'),
])
def test_out_of_range_values_are_one_line_naming_key_value_and_range(tmp_path, capsys, override,
                                                                    message):
    workdir = tmp_path / 'run'
    status = main(['train', '--config', os.path.join(ROOT, 'configs', 'mlp_ring8.py'),
                   '--workdir', str(workdir), f'--config.{override}'])
    line = _cli_error(capsys)
    assert status == 2 and line.startswith('ganjax: config error: ') and message in line, line
    assert not workdir.exists()


def _config_file(tmp_path, body: str) -> str:
    (tmp_path / 'configs').symlink_to(os.path.join(ROOT, 'configs'))
    path = tmp_path / 'mine.py'
    path.write_text('from configs import default\n\n\n'
                    'def get_config():\n'
                    '    c = default.get_config()\n'
                    f'    {body}\n'
                    '    return c\n')
    return str(path)


def test_a_config_file_setting_a_key_to_the_wrong_type(tmp_path, capsys):
    path = _config_file(tmp_path, 'c.data.batch_size = "64"')
    status = main(['train', '--config', path, '--workdir', str(tmp_path / 'run')])
    line = _cli_error(capsys)
    assert status == 2
    assert (f'{path}, line 6: `c.data.batch_size = "64"`: batch_size takes a value of type int, '
            'not str') in line
    assert not (tmp_path / 'run').exists()


def test_a_config_file_that_raises_names_its_line(tmp_path, capsys):
    path = _config_file(tmp_path, 'c.optim.g_lr = 1 / 0')
    assert main(['train', '--config', path, '--workdir', str(tmp_path / 'run')]) == 2
    line = _cli_error(capsys)
    assert f'{path}, line 6: `c.optim.g_lr = 1 / 0`' in line and 'ZeroDivisionError' in line


@pytest.mark.parametrize('text, message', [
    ('{"seed": ', 'is not valid JSON (Expecting value at line 1, column 10)'),
    ('[1, 2]', 'holds a JSON list, not a config object'),
    ('{"optim": {"b1": "0.5"}}', "optim.b1='0.5' is a str; expected a float"),
    ('{"optim": 3}', 'optim is 3, not a section of keys'),
    ('{"optim": {"lr": 0.1}}', "has unknown key 'optim.lr'"),
])
def test_from_json_refuses_what_is_not_a_saved_config(text, message):
    with pytest.raises(ConfigError) as error:
        config_lib.from_json(text, where='run/config.json')
    assert str(error.value).startswith('run/config.json') and message in str(error.value)
