"""`ganjax eval` on trained runs: a table, a JSON file, and the real-vs-real floor."""

import json
import os

import numpy as np
import pytest

from ganjax import data, evaluate, parallel, run_dir, summaries
from ganjax import train as train_lib
from ganjax.cli import main
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state
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
    assert set(gen) == {'fid', 'kid', 'kid_std', 'precision', 'recall', 'density', 'coverage',
                        'modes_covered', 'high_quality', 'kl_to_uniform'}
    # Real ring samples: every mode, and P(|x - mode| <= 3 std) = 1 - exp(-9/2) = 0.989 in 2D.
    assert floor['modes_covered'] == 8 and abs(floor['high_quality'] - 0.989) < 0.02
    assert result['num'] == 300
    # Three steps of training are far from the data; two real samples are close to each other.
    assert floor['fid'] < 0.1 < gen['fid']
    assert floor['coverage'] > 0.8 and gen['coverage'] < floor['coverage']
    # KL of the mode histogram is undefined (NaN) when no sample is near a mode.
    assert gen['modes_covered'] == 0 and np.isnan(gen['kl_to_uniform'])
    assert all(np.isfinite(v) for k, v in list(gen.items()) + list(floor.items())
               if k != 'kl_to_uniform' or v == floor['kl_to_uniform'])


def test_eval_of_an_image_run_without_classifier_says_how_to_make_one(tmp_path, capsys):
    config = tiny_config('dcgan', data__name='mnist_5k', train__num_steps=1,
                         train__sample_every=100, train__checkpoint_every=100)
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    # The run records its class names (`ganjax sample --class` and `classify` print them).
    with open(os.path.join(workdir, 'run_info.json')) as f:
        assert json.load(f)['class_names'] == [str(k) for k in range(10)]
    status = main(['eval', '--workdir', workdir, '--features_dir', str(tmp_path / 'none')])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and 'ganjax train-features' in err[0]


def _ring_eval_config(**overrides):
    return tiny_config('mlp', data__name='ring8', data__batch_size=32, train__sample_every=100,
                       train__checkpoint_every=100, eval__num_samples=64, eval__batch_size=32,
                       **overrides)


def test_training_evaluates_every_n_steps_and_keeps_the_best_checkpoint(tmp_path, capsys):
    # Steps 2 and 4, then the final step 5 (not a multiple of eval.every).
    config = _ring_eval_config(train__num_steps=5, eval__every=2, eval__best_metric='fid')
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    history = summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'))
    assert [r['step'] for r in history] == [2, 4, 5]
    assert os.path.getsize(os.path.join(workdir, 'eval.png')) > 0
    assert {'fid', 'kid', 'recall', 'modes_covered', 'high_quality'} <= set(history[0])
    with open(os.path.join(workdir, 'best', 'best.json')) as f:
        best = json.load(f)
    winner = min(history, key=lambda r: r['fid'])
    assert best['metric'] == 'fid' and best['step'] == winner['step']
    assert best['value'] == winner['fid']
    _, _, state = run_dir.load_run(workdir, best=True)
    assert int(state.step) == winner['step']
    # The best checkpoint's generator scores what the run logged for it (same noise, same data).
    result = evaluate.evaluate(workdir, num=64, batch_size=32, best=True)
    assert result['step'] == winner['step']
    np.testing.assert_allclose(result['generator']['fid'], winner['fid'], rtol=1e-4)
    out = str(tmp_path / 'best.png')
    assert main(['sample', '--workdir', workdir, '--best', '--num', '16', '--out', out]) == 0
    assert os.path.exists(out)


def test_resumed_run_keeps_one_eval_history_and_its_best_record(tmp_path):
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(_ring_eval_config(train__num_steps=4, eval__every=2), workdir)
    with open(os.path.join(workdir, 'best', 'best.json')) as f:
        first_best = json.load(f)
    train_lib.train_and_evaluate(_ring_eval_config(train__num_steps=6, eval__every=2), workdir)
    history = summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'))
    assert [r['step'] for r in history] == [2, 4, 6]
    with open(os.path.join(workdir, 'best', 'best.json')) as f:
        best = json.load(f)
    assert best['value'] <= first_best['value']
    assert best['value'] == min(r['fid'] for r in history)


def test_evaluation_sharded_over_devices_equals_one_device():
    config = tiny_config('mlp', data__name='ring8', data__batch_size=32)
    gan = build_gan(config, (2,))
    state = create_state(config, gan)
    one = evaluate.Evaluator(config, gan, 64, batch_size=32)
    config8 = tiny_config('mlp', data__name='ring8', data__batch_size=32,
                          parallel__num_devices=8)
    par = parallel.Parallel(config8)
    placed = par.place_state(state)
    eight = evaluate.Evaluator(config8, gan, 64, batch_size=32, constrain=par.constrain,
                               num_devices=8)
    a = one.generator_metrics(state.ema_params, state.g_state)
    b = eight.generator_metrics(placed.ema_params, placed.g_state)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_eval_config_errors_come_before_the_workdir_is_touched(tmp_path):
    workdir = tmp_path / 'run'
    # An image run evaluating with a classifier that does not exist.
    config = tiny_config('dcgan', data__name='mnist_5k', eval__every=10,
                         eval__features_dir=str(tmp_path / 'none'))
    with pytest.raises(ConfigError, match='train-features'):
        train_lib.train_and_evaluate(config, str(workdir))
    # A best metric these features and data do not report.
    config = _ring_eval_config(eval__every=2, eval__best_metric='is')
    with pytest.raises(ConfigError, match="eval.best_metric='is'"):
        train_lib.train_and_evaluate(config, str(workdir))
    # Inception features on 2D points.
    config = _ring_eval_config(eval__every=2, eval__features='inception')
    with pytest.raises(ConfigError, match='Inception features need images'):
        train_lib.train_and_evaluate(config, str(workdir))
    assert not workdir.exists()
    with pytest.raises(ConfigError, match='fdi'):
        tiny_config('mlp', eval__best_metric='fdi')


def test_is_better_follows_each_metrics_direction():
    assert evaluate.is_better('fid', 1.0, None)
    assert evaluate.is_better('fid', 1.0, 2.0) and not evaluate.is_better('fid', 3.0, 2.0)
    assert evaluate.is_better('recall', 0.9, 0.5) and not evaluate.is_better('recall', 0.4, 0.5)
    assert not evaluate.is_better('fid', float('nan'), 2.0)
    assert not evaluate.is_better('fid', float('nan'), None)
    assert evaluate.is_better('kl_to_uniform', 0.1, float('nan'))
    assert set(evaluate.METRIC_GOALS.values()) == {'min', 'max'}


def test_grouping_batches_into_compiled_calls_does_not_change_the_features(monkeypatch):
    config = tiny_config('mlp', data__name='ring8', data__batch_size=32)
    gan = build_gan(config, (2,))
    state = create_state(config, gan)
    ev = evaluate.Evaluator(config, gan, 100, batch_size=32)
    assert ev._calls() == [([0, 32, 64], 32), ([96], 4)]
    held_out = data.build_source(config.data, 'eval')
    one_call = ev.fake_features(state.ema_params, state.g_state), ev.real_features(held_out)
    monkeypatch.setattr(evaluate, '_BATCHES_PER_CALL', 2)
    assert ev._calls() == [([0, 32], 32), ([64], 32), ([96], 4)]
    two_calls = ev.fake_features(state.ema_params, state.g_state), ev.real_features(held_out)
    for a, b in zip(one_call, two_calls):
        np.testing.assert_allclose(b.features, a.features, rtol=1e-6)
        np.testing.assert_allclose(b.samples, a.samples, rtol=1e-6)
        np.testing.assert_allclose(b.stats.outer, a.stats.outer, rtol=1e-5, atol=1e-5)
        assert int(b.stats.count) == int(a.stats.count) == 100


def test_inception_score_of_class_sorted_examples_uses_random_splits():
    # Real subsets come in index order; for class-sorted data each IS split would hold one class
    # (IS 1). Confident, balanced predictions over 10 classes must score close to 10.
    config = tiny_config('mlp', data__name='ring8')
    ev = evaluate.Evaluator(config, build_gan(config, (2,)), 1000, batch_size=500)
    probs = np.repeat(np.eye(10, dtype=np.float32), 100, axis=0)  # sorted by class
    values = ev.compare(ev.reference._replace(probs=probs))
    assert values['is'] > 9.0
