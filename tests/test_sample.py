"""`ganjax sample` of conditional runs: one class (--class), every class (--per-class), and the
outputs by --out: a picture, .npz arrays with labels, a folder that is an image_folder dataset."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from ganjax import config as config_lib
from ganjax import data, images, run_dir
from ganjax.checkpoint import Checkpointer
from ganjax.cli import main
from ganjax.errors import GanjaxError
from ganjax.train_step import build_gan, create_state
from util import tiny_config

# Names that sort in class order, unlike their indices' strings, to tell names from indices.
NAMES = tuple(f'd{k}' for k in range(10))


def _write_run(workdir, conditional: bool, class_names=NAMES, state=True):
    """A run folder as training leaves it (config.json, run_info.json, a checkpoint at step 3)
    with an untrained tiny MLP on 8x8 digits: sampling needs no trained weights. G reads the
    class through its input (one-hot z), so even untrained its samples depend on the class (the
    class gains of conditional BatchNorm start at zero)."""
    config = tiny_config('mlp', data__name='mnist_5k', data__image_size=8,
                         model__conditional=conditional, model__g_conditioning='concat')
    source = data.build_source(config.data, 'train')
    os.makedirs(workdir)
    run_dir.reconcile_config(config, str(workdir))
    run_dir.write_json_atomic(os.path.join(workdir, 'run_info.json'), {
        'data_shape': list(source.data_shape), 'num_classes': source.num_classes,
        'class_names': list(class_names), 'scaling': source.scaling.to_json()})
    ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'))
    if state:
        gan = build_gan(config, source.data_shape, source.num_classes, scaling=source.scaling)
        ckpt.save(3, create_state(config, gan), data_position=0)
    else:  # a stand-in: the command must refuse before restoring it
        ckpt.save(3, {'w': np.zeros(2, np.float32)}, data_position=0)
    ckpt.close()
    return str(workdir)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return _write_run(tmp_path_factory.mktemp('cond') / 'run', conditional=True)


def _npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_one_class_as_npz_by_index_or_name(run, tmp_path, capsys):
    assert main(['sample', '--workdir', run, '--class', '3', '--num', '5',
                 '--out', str(tmp_path / 'x.npz')]) == 0
    assert 'wrote 5 samples of class 3 (d3)' in capsys.readouterr().out
    x = _npz(tmp_path / 'x.npz')
    assert x['x'].shape == (5, 8, 8, 1) and x['x'].dtype == np.uint8
    assert x['label'].tolist() == [3] * 5 and tuple(x['class_names']) == NAMES
    assert main(['sample', '--workdir', run, '--class', 'd3', '--num', '5',
                 '--out', str(tmp_path / 'y.npz')]) == 0
    np.testing.assert_array_equal(_npz(tmp_path / 'y.npz')['x'], x['x'])
    # The label reaches the generator: same noise, another class, other samples.
    assert main(['sample', '--workdir', run, '--class', '4', '--num', '5',
                 '--out', str(tmp_path / 'z.npz')]) == 0
    assert not np.array_equal(_npz(tmp_path / 'z.npz')['x'], x['x'])


def test_per_class_grid_has_a_row_per_class(run, tmp_path):
    out = tmp_path / 'grid.png'
    assert main(['sample', '--workdir', run, '--per-class', '2', '--out', str(out)]) == 0
    with Image.open(out) as img:
        # 10 rows and 2 columns of 8x8 tiles, 2 pixels of padding around each.
        assert img.size == (2 * (8 + 2) + 2, 10 * (8 + 2) + 2)


def test_folder_output_is_an_image_folder_dataset_with_the_classes(run, tmp_path, capsys):
    folder = tmp_path / 'generated'
    assert main(['sample', '--workdir', run, '--per-class', '3', '--out', str(folder)]) == 0
    assert 'note' not in capsys.readouterr().out
    assert sorted(os.listdir(folder)) == list(NAMES)
    assert main(['sample', '--workdir', run, '--per-class', '3',
                 '--out', str(tmp_path / 'same.npz')]) == 0
    arrays = _npz(tmp_path / 'same.npz')
    source = data.build_source(config_lib.ConfigDict(
        {'name': 'image_folder', 'path': str(folder), 'eval_fraction': 0.0}), 'train')
    assert source.class_names == NAMES and len(source) == 30
    batch = source.get_batch(np.arange(30))
    np.testing.assert_array_equal(batch['label'], arrays['label'])
    np.testing.assert_array_equal(batch['x'], arrays['x'])  # PNG is lossless


def test_folder_of_one_class_notes_that_labels_are_renumbered(run, tmp_path, capsys):
    folder = tmp_path / 'threes'
    assert main(['sample', '--workdir', run, '--class', '3', '--num', '2',
                 '--out', str(folder)]) == 0
    assert 'note: the image_folder source numbers classes' in capsys.readouterr().out
    assert os.listdir(folder) == ['d3'] and len(os.listdir(folder / 'd3')) == 2


def test_16_bit_samples_are_written_as_tiff_and_read_back_exactly(tmp_path):
    x = np.random.default_rng(0).integers(0, 65536, (4, 6, 6, 1), dtype=np.uint16)
    paths = images.save_samples_folder(x, np.array([1, 0, 1, 1]), ('a', 'b'), str(tmp_path))
    assert [os.path.relpath(p, tmp_path) for p in paths] == [
        'b/00000.tif', 'a/00000.tif', 'b/00001.tif', 'b/00002.tif']
    source = data.build_source(config_lib.ConfigDict(
        {'name': 'image_folder', 'path': str(tmp_path), 'eval_fraction': 0.0}), 'train')
    assert source.dtype == np.uint16
    np.testing.assert_array_equal(source.get_batch(np.arange(4))['x'], x[[1, 0, 2, 3]])


def test_class_names_that_cannot_be_folders_are_refused(tmp_path):
    x = np.zeros((2, 4, 4, 1), np.uint8)
    for bad in ('a/b', '..', '.hidden', ''):
        with pytest.raises(GanjaxError, match='cannot name a subfolder'):
            images.save_samples_folder(x, np.array([0, 1]), ('ok', bad), str(tmp_path))
    assert os.listdir(tmp_path) == []


def _refused(capsys, argv, *expected):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in captured.err, captured.err
    for text in expected:
        assert text in lines[0], lines[0]


def test_sample_errors_are_one_line_and_write_nothing(run, tmp_path, capsys):
    out = str(tmp_path / 'x.npz')
    base = ['sample', '--workdir', run, '--out', out]
    _refused(capsys, base + ['--class', '10'], '--class 10 is out of range',
             '10 classes, 0-9: d0, d1')
    _refused(capsys, base + ['--class', 'cat'], "--class 'cat' names no class", 'd9')
    _refused(capsys, base + ['--class', '1', '--per-class', '2'],
             '--class and --per-class exclude each other')
    _refused(capsys, base + ['--num', '3', '--per-class', '2'],
             '--num and --per-class exclude each other')
    _refused(capsys, base + ['--per-class', '0'], '--per-class must be positive')
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'mine.png').write_bytes(b'')
    _refused(capsys, ['sample', '--workdir', run, '--out', str(tmp_path / 'full')],
             'is a folder that is not empty')
    assert sorted(os.listdir(tmp_path)) == ['full']


def test_class_of_an_unconditional_run_is_refused(tmp_path, capsys):
    workdir = _write_run(tmp_path / 'run', conditional=False, class_names=(), state=False)
    assert run_dir.load_run_classes(workdir) == (0, ())
    for flag in (['--class', '3'], ['--per-class', '2']):
        _refused(capsys, ['sample', '--workdir', workdir, '--out', str(tmp_path / 'x.npz')] +
                 flag, 'is unconditional (model.conditional=False)', flag[0])
    assert not (tmp_path / 'x.npz').exists()


def test_runs_recorded_without_class_names_get_index_names(tmp_path):
    workdir = _write_run(tmp_path / 'run', conditional=True, class_names=(), state=False)
    with open(os.path.join(workdir, 'run_info.json')) as f:
        assert json.load(f)['class_names'] == []
    assert run_dir.load_run_classes(workdir) == (10, tuple('0123456789'))
    assert run_dir.load_class_names(workdir) == tuple('0123456789')
    assert run_dir.default_class_names(12)[:3] == ('00', '01', '02')
