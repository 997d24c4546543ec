"""Tests of ganjax.data.scaling: the maps between stored values and the model's range."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.data.scaling import KINDS, Scaling
from ganjax.data.source import ArraySource
from ganjax.errors import DataError


def test_8bit_images_give_exactly_the_old_formula_on_numpy_and_inside_jit():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    scaling = Scaling.image(8)
    old = x.astype(np.float32) * (2.0 / 255.0) - 1.0
    new = scaling.to_model(x)
    assert isinstance(new, np.ndarray) and new.dtype == np.float32
    np.testing.assert_array_equal(new, old)
    # Inside a compiled step, as the training step and the evaluator call it.
    old_jit = jax.jit(lambda v: v.astype(jnp.float32) * (2.0 / 255.0) - 1.0)(x)
    new_jit = jax.jit(scaling.to_model)(jnp.asarray(x))
    assert new_jit.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(new_jit), np.asarray(old_jit))
    assert float(new[0, 0, 0]) == -1.0 and float(new[-1, -1, 0]) == 1.0


@pytest.mark.parametrize('bits, dtype', [(8, np.uint8), (16, np.uint16)])
def test_image_round_trip_is_exact_for_every_value(bits, dtype):
    scaling = Scaling.image(bits)
    x = np.arange(2 ** bits, dtype=np.int64).astype(dtype).reshape(-1, 1)
    y = scaling.to_model(x)
    assert y.min() == -1.0 and y.max() == 1.0
    back = scaling.to_data(y)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, x)
    # The same through the compiled forward map.
    np.testing.assert_array_equal(scaling.to_data(np.asarray(jax.jit(scaling.to_model)(x))), x)


def test_image_to_data_clips_rounds_and_maps_nan_to_zero():
    y = np.array([-3.0, -1.0, 0.0, 0.999, 1.0, 7.0, np.nan], np.float32)
    np.testing.assert_array_equal(Scaling.image(8).to_data(y),
                                  np.array([0, 0, 128, 255, 255, 255, 0], np.uint8))
    np.testing.assert_array_equal(Scaling.image(16).to_data(np.array([-2.0, 0.0, 2.0])),
                                  np.array([0, 32768, 65535], np.uint16))


def test_standardized_table_maps_columns_to_mean_0_std_1_and_back():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 3)) * [10.0, 0.5, 2.0] + [1000.0, -50.0, 0.0]).astype(np.float32)
    scaling = Scaling.standardized(x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64))
    y = scaling.to_model(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(0), 1.0, atol=1e-4)
    back = scaling.to_data(y)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(scaling.mean, x.mean(0, dtype=np.float64))
    np.testing.assert_allclose(np.asarray(jax.jit(scaling.to_model)(x)), y, rtol=1e-6, atol=1e-6)
    # A constant column is centered, not divided by 0.
    const = Scaling.standardized([3.0], [0.0])
    np.testing.assert_array_equal(const.to_model(np.full((2, 1), 3.0, np.float32)), 0.0)


def test_identity_and_one_hot_leave_values_alone():
    v = np.array([[-4.0, 2.5]], np.float32)
    np.testing.assert_array_equal(Scaling.identity().to_model(v), v)
    np.testing.assert_array_equal(Scaling.identity().to_data(v), v)
    # One-hot stored compactly as uint8 reaches the model as 0/1 floats (not [-1, 1] as a uint8
    # image would), and samples come back as probabilities for the caller to decode.
    one_hot = Scaling.one_hot(np.uint8)
    seq = np.eye(4, dtype=np.uint8)[[0, 3, 1]]
    np.testing.assert_array_equal(one_hot.to_model(seq), seq.astype(np.float32))
    probs = np.array([[0.1, 0.7, 0.1, 0.1]], np.float32)
    out = one_hot.to_data(probs)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, probs)


@pytest.mark.parametrize('scaling', [
    Scaling.image(8), Scaling.image(16), Scaling.identity(), Scaling.one_hot(np.uint8),
    Scaling.standardized([1000.0, -50.25, 1e-3], [10.0, 0.5, 3e-7]),
], ids=lambda s: f'{s.kind}-{s.dtype}')
def test_json_round_trip_is_equal(scaling):
    text = json.dumps(scaling.to_json())
    again = Scaling.from_json(json.loads(text))
    assert again == scaling and hash(again) == hash(scaling)
    assert Scaling.from_json(text) == scaling
    x = np.arange(6, dtype=scaling.dtype).reshape(2, 3) if scaling.quantize else (
        np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(again.to_model(x), scaling.to_model(x))


def test_bad_scalings_and_records_are_data_errors():
    with pytest.raises(DataError, match='kind'):
        Scaling('gamma', 'float32')
    with pytest.raises(DataError, match='one per feature'):
        Scaling('identity', 'float32', (1.0, 2.0), (0.0, 0.0, 0.0))
    with pytest.raises(DataError, match='non-zero'):
        Scaling('identity', 'float32', (0.0,))
    with pytest.raises(DataError, match='integer'):
        Scaling('image', 'float32', quantize=True)
    with pytest.raises(DataError, match='bit depth'):
        Scaling.image(17)
    with pytest.raises(DataError, match='keys'):
        Scaling.from_json({'kind': 'image'})
    with pytest.raises(DataError, match='not JSON'):
        Scaling.from_json('{')
    record = Scaling.image(8).to_json()
    record['scale'] = 'x'
    with pytest.raises(DataError):
        Scaling.from_json(record)
    assert set(KINDS) == {'image', 'identity', 'standardized', 'one_hot', 'percentile'}


def test_array_source_checks_its_scaling():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(DataError, match='dtype float32 with a scaling for uint8'):
        ArraySource(x, np.zeros(4), num_classes=0, name='t', scaling=Scaling.image(8))
    with pytest.raises(DataError, match='2 features'):
        ArraySource(x, np.zeros(4), num_classes=0, name='t',
                    scaling=Scaling.standardized([0.0, 0.0], [1.0, 1.0]))
    src = ArraySource(x, np.zeros(4), num_classes=0, name='t',
                      scaling=Scaling.standardized([0.0] * 3, [1.0] * 3))
    assert src.scaling.kind == 'standardized'


def test_sample_npy_of_a_standardized_table_is_in_the_tables_units(tmp_path):
    from ganjax import run_dir
    from ganjax import train as train_lib
    from ganjax.cli import main
    from util import tiny_config

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(64, 2)) * [10.0, 0.5] + [1000.0, -50.0]
    table = tmp_path / 'expression.csv'
    table.write_text('g1,g2\n' + '\n'.join(f'{a:.4f},{b:.4f}' for a, b in rows) + '\n')
    config = tiny_config('mlp', data__name='csv', data__path=str(table), data__standardize=True,
                         train__num_steps=1)
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, 'run_info.json'), encoding='utf-8') as f:
        recorded = Scaling.from_json(json.load(f)['scaling'])
    assert recorded.kind == 'standardized' and recorded == run_dir.load_scaling(workdir)
    out = str(tmp_path / 'samples.npy')
    assert main(['sample', '--workdir', workdir, '--num', '16', '--out', out]) == 0
    samples = np.load(out)
    assert samples.shape == (16, 2) and samples.dtype == np.float32
    # An untrained generator's outputs are within a few units of 0 in the model's range, so in
    # the table's units they lie within a few stds of each column's mean, far from 0.
    z = (samples - recorded.mean) / recorded.std
    assert np.all(np.abs(z) < 20)
    assert np.all(np.abs(samples[:, 0] - 1000) < 300) and np.all(np.abs(samples[:, 1] + 50) < 15)


def test_a_classifier_trained_on_another_scaling_is_refused(tmp_path):
    import flax.serialization

    from ganjax import evaluate
    from ganjax.errors import ConfigError
    from ganjax.metrics import features

    folder = tmp_path / 'features'
    folder.mkdir()
    model = features.Classifier(3)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 1)))['params']
    (folder / 'classifier.msgpack').write_bytes(flax.serialization.to_bytes(params))
    info = {'data_shape': [6, 6, 1], 'num_classes': 3, 'held_out_accuracy': 1.0,
            'scaling': Scaling.image(8).to_json()}
    (folder / 'classifier.json').write_text(json.dumps(info))
    ok = evaluate.feature_map(None, (6, 6, 1), 'classifier', str(folder),
                              scaling=Scaling.image(8))
    assert ok.features(jnp.zeros((2, 6, 6, 1))).shape == (2, features.FEATURE_DIM)
    with pytest.raises(ConfigError, match='image scaling of uint8.*uint16.*train-features'):
        evaluate.feature_map(None, (6, 6, 1), 'classifier', str(folder),
                             scaling=Scaling.image(16))


def test_a_run_recorded_before_scalings_gets_the_one_its_data_declares(tmp_path):
    from ganjax import config as config_lib
    from ganjax import run_dir

    config = config_lib.default_config()
    record = json.loads(config_lib.to_json(config))
    del record['data']['standardize']  # written before the key existed
    (tmp_path / 'config.json').write_text(json.dumps(record))
    (tmp_path / 'run_info.json').write_text(json.dumps({'data_shape': [28, 28, 1]}))
    assert run_dir.load_scaling(str(tmp_path)) == Scaling.image(8)
    info = {'data_shape': [28, 28, 1], 'scaling': Scaling.image(16).to_json()}
    (tmp_path / 'run_info.json').write_text(json.dumps(info))
    assert run_dir.load_scaling(str(tmp_path)) == Scaling.image(16)
