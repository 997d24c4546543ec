"""`ganjax classify`: predictions and counts from a semi-supervised run's discriminator."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from ganjax import train as train_lib
from ganjax.classify import count_classes, predict
from ganjax.cli import main
from tests.util import tiny_config

CLASSES = ('alpha', 'beta', 'gamma')


def _folder(root, per_class=8):
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            # Each class its own brightness, so the folder is learnable at all.
            pixels = np.clip(rng.normal(60 + 70 * k, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, name, f'{i}.png'))
    return root


@pytest.fixture(scope='module')
def ssgan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('classify')
    folder = _folder(str(tmp / 'cells'))
    config = tiny_config('dcgan', data__name='image_folder', data__path=folder,
                         model__d_head='kplus1', model__d_norm='layer', data__num_labels=6,
                         data__labelled_batch_size=2, train__num_steps=2,
                         train__checkpoint_every=2, train__sample_every=2, train__log_every=1,
                         eval__best_metric='')
    workdir = str(tmp / 'run')
    train_lib.train_and_evaluate(config, workdir)
    return workdir, folder


def _rows(path):
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def test_classify_a_folder_writes_predictions_and_counts(ssgan_run, tmp_path, capsys):
    workdir, folder = ssgan_run
    out = str(tmp_path / 'pred.csv')
    assert main(['classify', '--workdir', workdir, '--input', folder, '--out', out,
                 '--batch_size', '5']) == 0
    rows = _rows(out)
    assert len(rows) == 24
    assert rows[0]['example'] == os.path.join('alpha', '0.png')
    for row in rows:
        probs = [float(row[f'p_{n}']) for n in CLASSES]
        assert abs(sum(probs) - 1) < 1e-4
        assert row['predicted_name'] == CLASSES[int(row['predicted'])]
        assert float(row['probability']) == pytest.approx(max(probs), abs=1e-6)
        assert row['true_name'] == row['example'].split(os.sep)[0]
    counts = _rows(str(tmp_path / 'pred_counts.csv'))
    assert [c['name'] for c in counts] == list(CLASSES)
    assert sum(int(c['count']) for c in counts) == 24
    predicted = np.array([int(r['predicted']) for r in rows])
    np.testing.assert_array_equal([int(c['count']) for c in counts],
                                  np.bincount(predicted, minlength=3))
    printed = capsys.readouterr().out
    accuracy = np.mean(predicted == np.repeat(np.arange(3), 8))
    assert f'accuracy against the input\'s labels: {accuracy:.4f}' in printed


def test_classify_one_image_and_an_array_agree(ssgan_run, tmp_path):
    workdir, folder = ssgan_run
    one = str(tmp_path / 'one.csv')
    image = os.path.join(folder, 'beta', '3.png')
    assert main(['classify', '--workdir', workdir, '--input', image, '--out', one]) == 0
    x = np.asarray(Image.open(image))[None, :, :, None]
    np.savez(tmp_path / 'x.npz', x=x, label=np.array([1]))
    arr = str(tmp_path / 'arr.csv')
    assert main(['classify', '--workdir', workdir, '--input', str(tmp_path / 'x.npz'),
                 '--out', arr]) == 0
    a, b = _rows(one)[0], _rows(arr)[0]
    assert a['example'] == '3.png' and b['true_name'] == 'beta'
    assert [a[f'p_{n}'] for n in CLASSES] == [b[f'p_{n}'] for n in CLASSES]


def test_classify_refuses_bad_input(ssgan_run, tmp_path, capsys):
    workdir, _ = ssgan_run
    np.save(tmp_path / 'wrong.npy', np.zeros((2, 9, 9, 1), np.uint8))
    assert main(['classify', '--workdir', workdir, '--input', str(tmp_path / 'wrong.npy'),
                 '--out', str(tmp_path / 'p.csv')]) == 1
    assert 'examples of shape (9, 9, 1); the run reads (8, 8, 1)' in capsys.readouterr().err
    np.save(tmp_path / 'float.npy', np.zeros((2, 8, 8, 1), np.float32))
    assert main(['classify', '--workdir', workdir, '--input', str(tmp_path / 'float.npy'),
                 '--out', str(tmp_path / 'p.csv')]) == 1
    assert 'dtype float32' in capsys.readouterr().err
    assert main(['classify', '--workdir', workdir, '--input', str(tmp_path / 'none'),
                 '--out', str(tmp_path / 'p.csv')]) == 2
    assert 'no such file or folder' in capsys.readouterr().err
    assert main(['classify', '--workdir', workdir, '--input', str(tmp_path / 'wrong.npy'),
                 '--out', str(tmp_path / 'p.txt')]) == 2
    assert not os.path.exists(tmp_path / 'p.csv')


def test_predict_pads_the_last_batch_and_counts():
    calls = []

    def fake(params, state, x):
        calls.append(len(x))
        return np.eye(3, dtype=np.float32)[np.asarray(x[:, 0]) % 3]

    x = np.arange(7)[:, None]
    probs = predict(fake, None, None, x, batch_size=3)
    assert calls == [3, 3, 3] and probs.shape == (7, 3)
    np.testing.assert_array_equal(np.argmax(probs, -1), np.arange(7) % 3)
    np.testing.assert_array_equal(count_classes(np.argmax(probs, -1), 4), [3, 2, 2, 0])


def test_labelled_stream_from_the_host_equals_on_device(ssgan_run, tmp_path):
    """The labelled rows reach the step the same whether batches are gathered on the device or
    read on the host."""
    import jax

    from ganjax import run_dir

    workdir, folder = ssgan_run
    config = run_dir.load_workdir_config(workdir)
    config.data.on_device = 'never'
    train_lib.train_and_evaluate(config, str(tmp_path / 'host'))
    _, _, a = run_dir.load_run(workdir)
    _, _, b = run_dir.load_run(str(tmp_path / 'host'))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
