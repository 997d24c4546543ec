"""`ganjax eval` on trained runs: a table, a JSON file, and the real-vs-real floor."""

import json
import os

import numpy as np

from ganjax import train as train_lib
from ganjax.cli import main
from util import tiny_config


def test_eval_of_a_vector_run_reports_generator_and_floor(tmp_path, capsys):
    config = tiny_config('mlp', data__name='ring8', data__batch_size=32, train__num_steps=3,
                         train__sample_every=100, train__checkpoint_every=100)
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    assert main(['eval', '--workdir', workdir, '--num', '300']) == 0
    out = capsys.readouterr().out
    assert 'real vs real' in out and 'raw values' in out
    with open(os.path.join(workdir, 'eval', 'step_0000003.json')) as f:
        result = json.load(f)
    gen, floor = result['generator'], result['real_vs_real']
    assert set(gen) == {'fid', 'kid', 'kid_std', 'precision', 'recall', 'density', 'coverage'}
    assert result['num'] == 300
    # Three steps of training are far from the data; two real samples are close to each other.
    assert floor['fid'] < 0.1 < gen['fid']
    assert floor['coverage'] > 0.8 and gen['coverage'] < floor['coverage']
    assert all(np.isfinite(v) for v in list(gen.values()) + list(floor.values()))


def test_eval_of_an_image_run_without_classifier_says_how_to_make_one(tmp_path, capsys):
    config = tiny_config('dcgan', data__name='mnist_5k', train__num_steps=1,
                         train__sample_every=100, train__checkpoint_every=100)
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    status = main(['eval', '--workdir', workdir, '--features', str(tmp_path / 'none')])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and 'ganjax train-features' in err[0]
