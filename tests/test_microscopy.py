"""Tests of microscopy input: multi-channel 8/16-bit TIFF, percentile normalisation, crops and
tiles, broken files, and 16-bit TIFF samples (ganjax/data/image_folder.py, ganjax/images.py).

Every image is a tiny file the test writes itself (tifffile, PIL); nothing needs scikit-image.
"""

import json
import logging
import os

import ml_collections
import numpy as np
import pytest
import tifffile
from PIL import Image

from ganjax import data as data_lib
from ganjax import images
from ganjax.data import transforms
from ganjax.data.iterator import BatchIterator
from ganjax.data.scaling import Scaling, channel_percentiles
from ganjax.errors import ConfigError, DataError


def folder_config(path, **overrides):
    """An image_folder data config with the defaults of every key, overridden by keyword."""
    values = dict(name='image_folder', path=str(path), image_size=0, channels=0,
                  eval_fraction=0.0, split_seed=0, batch_size=4, prefetch=0, normalize='none',
                  percentiles=(0.5, 99.5), crop_size=0, crops_per_image=16, crop_mode='random',
                  skip_bad_files=False)
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def stack(seed, shape=(5, 12, 12), top=65536, dtype=np.uint16):
    """Random pixels [C, H, W] over most of the range of the dtype."""
    return np.random.default_rng(seed).integers(0, top, shape, dtype=dtype)


def write_pages(path, chw):
    """A multi-page TIFF, one channel per page (tifffile's QYX series)."""
    tifffile.imwrite(path, chw, photometric='minisblack')


def write_samples(path, hwc):
    """A multi-sample TIFF [H, W, C] (one page, contiguous samples: YXS)."""
    tifffile.imwrite(path, hwc, photometric='minisblack', planarconfig='contig')


def everything(source):
    return source.get_batch(np.arange(len(source)))


# --------------------------------------------------------------------------------------------
# Layout rule and 16-bit round trips


def test_five_channel_16bit_tiffs_as_pages_or_samples_round_trip_exactly(tmp_path):
    pages = stack(0)
    write_pages(tmp_path / 'a_pages.tif', pages)
    samples = np.moveaxis(stack(1), 0, -1)
    write_samples(tmp_path / 'b_samples.tiff', samples)
    src = data_lib.build_source(folder_config(tmp_path), 'train')
    assert src.data_shape == (12, 12, 5) and src.dtype == np.uint16
    assert src.scaling == Scaling.image(16)
    x = everything(src)['x']
    np.testing.assert_array_equal(x[0], np.moveaxis(pages, 0, -1))
    np.testing.assert_array_equal(x[1], samples)
    np.testing.assert_array_equal(src.scaling.to_data(src.scaling.to_model(x)), x)


def test_rgba_tiff_drops_alpha_and_imagej_channels_are_channels(tmp_path):
    rgba = stack(2, (6, 6, 4), 256, np.uint8)
    tifffile.imwrite(tmp_path / 'rgba.tif', rgba, photometric='rgb')
    src = data_lib.build_source(folder_config(tmp_path), 'train')
    assert src.data_shape == (6, 6, 3)
    np.testing.assert_array_equal(everything(src)['x'][0], rgba[..., :3])
    planar = tmp_path / 'planar'
    planar.mkdir()
    tifffile.imwrite(planar / 'p.tif', np.moveaxis(rgba, -1, 0), photometric='rgb',
                     planarconfig='separate')
    src = data_lib.build_source(folder_config(planar), 'train')
    np.testing.assert_array_equal(everything(src)['x'][0], rgba[..., :3])
    hyper = tmp_path / 'hyper'
    hyper.mkdir()
    chw = stack(3, (3, 8, 8))
    tifffile.imwrite(hyper / 'c.tif', chw, imagej=True, metadata={'axes': 'CYX'})
    src = data_lib.build_source(folder_config(hyper), 'train')
    np.testing.assert_array_equal(everything(src)['x'][0], np.moveaxis(chw, 0, -1))


@pytest.mark.parametrize('write, message', [
    # [H, W, C] saved without planarconfig: 16 pages of 16x5, which could be 16 channels.
    (lambda p: tifffile.imwrite(p, stack(0, (16, 16, 5))), r'16 pages of 16x5.*planarconfig'),
    (lambda p: tifffile.imwrite(p, stack(0, (4, 8, 8)), imagej=True, metadata={'axes': 'ZYX'}),
     'z-stack'),
    (lambda p: tifffile.imwrite(p, stack(0, (2, 3, 8, 8)), photometric='minisblack'),
     r'shape \(2, 3, 8, 8\).*one image'),
    (lambda p: tifffile.imwrite(p, np.zeros((8, 8), np.float32)), 'float32 pixels'),
], ids=['hwc_as_pages', 'z_stack', '4d', 'float'])
def test_ambiguous_or_unsupported_tiff_layouts_are_refused_naming_the_file(tmp_path, write,
                                                                           message):
    write(tmp_path / 'odd.tif')
    with pytest.raises(DataError, match=r"odd\.tif.*" + message):
        data_lib.build_source(folder_config(tmp_path), 'train')


# --------------------------------------------------------------------------------------------
# Percentile normalisation


def test_channel_percentiles_equal_numpy_percentile():
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 65536, (7, 9, 3), dtype=np.uint16),
             rng.gamma(2.0, 500.0, (5, 11, 3)).astype(np.uint16)]
    levels = (0.0, 0.5, 13.7, 50.0, 99.5, 100.0)
    pixels = np.concatenate([p.reshape(-1, 3) for p in parts])
    np.testing.assert_array_equal(channel_percentiles(parts, levels),
                                  np.percentile(pixels, levels, axis=0))
    small = rng.integers(0, 256, (4, 5, 5, 1), dtype=np.uint8)
    np.testing.assert_array_equal(channel_percentiles(small, (1.0, 99.0)),
                                  np.percentile(small.reshape(-1, 1), (1.0, 99.0), axis=0))


def test_percentile_scaling_maps_the_window_to_the_model_range_clips_and_inverts():
    scaling = Scaling.percentile([100.0, 0.0], [1100.0, 50000.0], 'uint16')
    x = np.array([[100, 0], [600, 25000], [1100, 50000], [0, 60000]], np.uint16)
    y = scaling.to_model(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[-1, -1], [0, 0], [1, 1], [-1, 1]], atol=1e-6)
    back = scaling.to_data(y)
    assert back.dtype == np.uint16
    # Inside the window every value comes back (within rounding); outside it is clipped.
    np.testing.assert_array_equal(back[:3], x[:3])
    np.testing.assert_array_equal(back[3], [100, 50000])
    np.testing.assert_array_equal(scaling.to_data(np.array([[-5.0, 7.0]])), [[100, 50000]])
    np.testing.assert_allclose(scaling.window, ([100, 0], [1100, 50000]))
    # A constant channel gets a window of one unit instead of a division by zero.
    flat = Scaling.percentile([7.0], [7.0], 'uint8')
    np.testing.assert_array_equal(flat.to_data(flat.to_model(np.array([[7]], np.uint8))), [[7]])


def test_percentile_json_round_trip_and_unclipped_records_stay_as_they_were():
    scaling = Scaling.percentile([10.5, 3.0, 0.0], [900.0, 65535.0, 12.25], 'uint16')
    record = json.loads(json.dumps(scaling.to_json()))
    assert record['clip'] is True and record['kind'] == 'percentile'
    assert Scaling.from_json(record) == scaling
    assert Scaling.from_json(json.dumps(record)) == scaling
    assert 'clip' not in Scaling.image(16).to_json()
    with pytest.raises(DataError, match='keys'):
        Scaling.from_json({**record, 'gamma': 2.2})


def test_percentiles_come_from_the_training_split_only_and_are_stored_with_the_run(tmp_path):
    from ganjax import run_dir

    # Ten dim files; whichever go to eval get very bright pixels, which must not move the window.
    for i in range(10):
        write_pages(tmp_path / f'f{i}.tif', stack(i, (2, 8, 8), 1000))
    config = folder_config(tmp_path, normalize='percentile', percentiles=(1.0, 99.0),
                           eval_fraction=0.3)
    held_out = data_lib.build_source(config, 'eval').files
    for name in held_out:
        write_pages(tmp_path / name, stack(99, (2, 8, 8)) | np.uint16(40000))
    train = data_lib.build_source(config, 'train')
    ev = data_lib.build_source(config, 'eval')
    assert ev.files == held_out and not set(train.files) & set(held_out)
    pixels = everything(train)['x'].reshape(-1, 2)
    low, high = np.percentile(pixels, (1.0, 99.0), axis=0)
    np.testing.assert_allclose(train.scaling.window, (low, high))
    assert train.scaling.kind == 'percentile' and ev.scaling == train.scaling
    assert np.all(train.scaling.window[1] < 1000)
    # Eval pixels above the window reach the model as exactly 1.
    assert train.scaling.to_model(everything(ev)['x']).max() == 1.0
    # Stored with a run (run_info.json, as training writes it) and read back equal.
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'run_info.json').write_text(json.dumps(
        {'scaling': train.scaling.to_json()}))
    assert run_dir.load_scaling(str(tmp_path / 'run')) == train.scaling


def test_percentile_round_trip_recovers_values_within_quantisation(tmp_path):
    chw = stack(5, (3, 16, 16), 4096)
    write_pages(tmp_path / 'a.tif', chw)
    src = data_lib.build_source(folder_config(tmp_path, normalize='percentile',
                                              percentiles=(0.0, 100.0)), 'train')
    x = everything(src)['x']
    back = src.scaling.to_data(src.scaling.to_model(x))
    np.testing.assert_array_equal(back, x)  # the full window: nothing clipped
    clipped = data_lib.build_source(folder_config(tmp_path, normalize='percentile'), 'train')
    low, high = clipped.scaling.window
    back = clipped.scaling.to_data(clipped.scaling.to_model(x))
    np.testing.assert_array_equal(back, np.clip(x, np.rint(low), np.rint(high)))


# --------------------------------------------------------------------------------------------
# Crops and tiles


def write_sizes(root, sizes, channels=2):
    for i, (h, w) in enumerate(sizes):
        write_pages(root / f'img{i}.tif', stack(i, (channels, h, w)))


def test_random_crops_are_seeded_deterministic_and_come_from_their_image(tmp_path):
    write_sizes(tmp_path, [(20, 30), (16, 16), (40, 25)])
    config = folder_config(tmp_path, crop_size=8, crops_per_image=5)
    src = data_lib.build_source(config, 'train')
    assert len(src) == 15 and src.data_shape == (8, 8, 2)
    x = everything(src)['x']
    for k in range(len(src)):
        full = np.moveaxis(tifffile.imread(tmp_path / src.files[k]), 0, -1)
        top, left = src.origins[k]
        np.testing.assert_array_equal(x[k], full[top:top + 8, left:left + 8])
    assert src.files == tuple(f'img{i}.tif' for i in range(3) for _ in range(5))
    # Reloading gives the same crops (the source is a fixed array: the iterator's (seed,
    # position) determinism and resume hold); another split_seed other crops.
    again = data_lib.build_source(config, 'train')
    np.testing.assert_array_equal(everything(again)['x'], x)
    first = [next(BatchIterator(s, 4, seed=3, prefetch=0))['x'] for s in (src, again)]
    np.testing.assert_array_equal(*first)
    other = data_lib.build_source(folder_config(tmp_path, crop_size=8, crops_per_image=5,
                                                split_seed=1), 'train')
    assert not np.array_equal(other.origins, src.origins)
    resized = data_lib.build_source(folder_config(tmp_path, crop_size=8, image_size=4), 'train')
    assert resized.data_shape == (4, 4, 2) and len(resized) == 48


def test_tiles_cover_a_centred_grid_and_eval_crops_come_from_held_out_files(tmp_path):
    write_sizes(tmp_path, [(20, 30), (16, 16), (40, 25), (17, 17)])
    config = folder_config(tmp_path, crop_size=8, crop_mode='tile', eval_fraction=0.25)
    train, ev = (data_lib.build_source(config, split) for split in ('train', 'eval'))
    assert not set(train.files) & set(ev.files)
    tiles = {'img0.tif': 2 * 3, 'img1.tif': 2 * 2, 'img2.tif': 5 * 3, 'img3.tif': 2 * 2}
    assert len(train) + len(ev) == sum(tiles.values())
    for src in (train, ev):
        for name in set(src.files):
            assert src.files.count(name) == tiles[name]
    assert transforms.tile_origins((20, 30), 8) == [(2, 3), (2, 11), (2, 19),
                                                     (10, 3), (10, 11), (10, 19)]


def test_without_cropping_sizes_must_match_and_crops_must_fit(tmp_path):
    write_sizes(tmp_path, [(12, 12), (12, 20), (10, 10), (12, 12)])
    with pytest.raises(DataError, match=r"img2\.tif.* 10x10.*12 pixels.*data.image_size"):
        data_lib.build_source(folder_config(tmp_path), 'train')
    resized = data_lib.build_source(folder_config(tmp_path, image_size=8), 'train')
    assert resized.data_shape == (8, 8, 2) and len(resized) == 4
    with pytest.raises(DataError, match=r"img2\.tif.* 10x10, smaller than data.crop_size=11"):
        data_lib.build_source(folder_config(tmp_path, crop_size=11), 'train')


@pytest.mark.parametrize('overrides, key', [
    (dict(crop_size=-1), 'crop_size'), (dict(crops_per_image=0), 'crops_per_image'),
    (dict(crop_mode='grid'), 'crop_mode'), (dict(normalize='zscore'), 'normalize'),
    (dict(percentiles=(99.0, 1.0)), 'percentiles'), (dict(percentiles=(0, 101)), 'percentiles'),
])
def test_bad_options_are_config_errors(tmp_path, overrides, key):
    write_sizes(tmp_path, [(8, 8)])
    with pytest.raises(ConfigError, match=f'data.{key}'):
        data_lib.build_source(folder_config(tmp_path, **overrides), 'train')


# --------------------------------------------------------------------------------------------
# Broken files


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _good_rgb_folder(root, n=4):
    for i in range(n):
        tifffile.imwrite(root / f'ok{i}.tif', stack(i, (10, 10, 3), 256, np.uint8),
                         photometric='rgb')


def _truncated_png(root):
    Image.fromarray(stack(0, (10, 10, 3), 256, np.uint8)).save(root / 'bad.png')
    _truncate(root / 'bad.png')


def _truncated_tiff(root):
    tifffile.imwrite(root / 'bad.tif', stack(0, (10, 10, 3), 256, np.uint8), photometric='rgb')
    _truncate(root / 'bad.tif')


BROKEN = {
    'truncated_png': (_truncated_png, 'bad.png', 'truncated'),
    'truncated_tiff': (_truncated_tiff, 'bad.tif', 'cannot decode'),
    'empty': (lambda root: (root / 'bad.png').write_bytes(b''), 'bad.png', r'empty \(0 bytes\)'),
    'not_an_image': (lambda root: (root / 'bad.tif').write_bytes(b'II*\x00 garbage'), 'bad.tif',
                     'holds no image'),
    'not_a_png': (lambda root: (root / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage'),
                  'bad.png', 'cannot read'),
    'two_channels_among_three': (
        lambda root: write_samples(root / 'bad.tif', stack(0, (10, 10, 2), 256, np.uint8)),
        'bad.tif', r'has 2 channel\(s\), the other images .* have 3'),
    'four_d': (lambda root: tifffile.imwrite(root / 'bad.tif', stack(0, (2, 2, 10, 10)),
                                             photometric='minisblack'),
               'bad.tif', 'one image per file'),
    'sixteen_among_eight': (lambda root: write_samples(root / 'bad.tif', stack(0, (10, 10, 3))),
                            'bad.tif', 'mixes 16-bit images'),
}


@pytest.mark.parametrize('kind', sorted(BROKEN))
def test_each_broken_file_is_one_error_naming_it(tmp_path, kind):
    make, name, message = BROKEN[kind]
    _good_rgb_folder(tmp_path)
    make(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        data_lib.build_source(folder_config(tmp_path), 'train')
    assert name in str(info.value) and 'data.skip_bad_files=True' in str(info.value)


def test_skip_bad_files_leaves_them_out_with_a_count(tmp_path, caplog):
    _good_rgb_folder(tmp_path)
    for kind in ('empty', 'truncated_tiff', 'two_channels_among_three'):
        sub = tmp_path / kind
        sub.mkdir()
        BROKEN[kind][0](sub)
    with pytest.raises(DataError, match=r'\(2 more bad file\(s\)'):
        data_lib.build_source(folder_config(tmp_path), 'train')
    with caplog.at_level(logging.WARNING, logger='ganjax.data.image_folder'):
        src = data_lib.build_source(folder_config(tmp_path, skip_bad_files=True), 'train')
    assert len(src) == 4 and src.data_shape == (10, 10, 3)
    bad = [os.path.join(k, BROKEN[k][1]) for k in ('empty', 'truncated_tiff',
                                                   'two_channels_among_three')]
    assert [f for f, _ in src.skipped] == sorted(bad)
    assert '3 bad files skipped' in src.description
    (record,) = caplog.records
    assert 'skipped 3 bad file(s) of 7' in record.getMessage()
    assert all(repr(name) in record.getMessage() for name in bad)
    # The classes were the subfolders of every file, bad ones included; the kept files are
    # unlabelled (they lie in the root).
    assert np.all(src.labels == -1)


def test_a_folder_of_only_bad_files_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    with pytest.raises(DataError, match=r'all 1 image files are bad.*a\.png'):
        data_lib.build_source(folder_config(tmp_path, skip_bad_files=True), 'train')


# --------------------------------------------------------------------------------------------
# Writing samples


def test_save_tiff_keeps_16_bits_and_every_channel(tmp_path):
    x = stack(0, (3, 6, 7, 5))
    images.save_tiff(x, str(tmp_path / 's.tif'))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / 's.tif'), x)
    assert os.listdir(tmp_path) == ['s.tif']
    with pytest.raises(ValueError, match='uint8 / uint16'):
        images.save_tiff(x.astype(np.float32), str(tmp_path / 'f.tif'))
    assert images.needs_tiff(np.uint16, 1) and images.needs_tiff(np.uint8, 5)
    assert not images.needs_tiff(np.uint8, 3)


def test_grid_of_many_channel_samples_shows_each_channel():
    x = np.zeros((4, 3, 2, 5), np.float32)
    x[..., 4] = 1.0  # channel 4 white, the rest mid-gray
    picture = images.samples_figure(x)
    # ceil(sqrt(4 / 5)) = 1 column of 4 tiles 3 x (2 * 5), padded by 2.
    assert picture.shape == (4 * 5 + 2, 10 + 4, 1)
    np.testing.assert_array_equal(picture[2:5, 2:12, 0],
                                  np.tile([128] * 8 + [255] * 2, (3, 1)))


@pytest.mark.slow  # ~20 s on the 2-core CPU: one compiled training step and a sample call
def test_a_run_on_16bit_crops_writes_16bit_many_channel_tiff_samples(tmp_path):
    from ganjax import run_dir
    from ganjax import train as train_lib
    from ganjax.cli import main
    from util import tiny_config

    folder = tmp_path / 'cells'
    folder.mkdir()
    for i in range(4):
        write_pages(folder / f'field{i}.tif', stack(i, (5, 24, 20), 3000) + np.uint16(1000))
    config = tiny_config('dcgan', data__name='image_folder', data__path=str(folder),
                         data__crop_size=8, data__crops_per_image=4, data__eval_fraction=0.0,
                         data__normalize='percentile', train__num_steps=1)
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    scaling = run_dir.load_scaling(workdir)
    assert scaling == data_lib.build_source(config.data, 'train').scaling
    assert scaling.kind == 'percentile' and len(scaling.scale) == 5
    out = str(tmp_path / 'samples.tif')
    assert main(['sample', '--workdir', workdir, '--num', '6', '--out', out]) == 0
    samples = tifffile.imread(out)
    assert samples.shape == (6, 8, 8, 5) and samples.dtype == np.uint16
    low, high = scaling.window
    assert np.all(samples >= np.floor(low)) and np.all(samples <= np.ceil(high))
    assert samples.max() > 255  # 16-bit values, not an 8-bit picture
    # The training grid shows every channel (a PNG for viewing).
    (grid,) = os.listdir(os.path.join(workdir, 'samples'))
    with Image.open(os.path.join(workdir, 'samples', grid)) as img:
        assert img.mode == 'L'


# --------------------------------------------------------------------------------------------
# The prepare step of configs/microscopy_crops.py (scikit-image's images are replaced here)


def test_prepare_microscopy_writes_fields_and_their_attribution(tmp_path):
    from ganjax.data import prepare_microscopy

    rgb = stack(0, (20, 30, 3), 256, np.uint8)
    gray = stack(1, (11, 9), 256, np.uint8)
    fake = {'ihc': rgb, 'cell': gray}
    written = prepare_microscopy.prepare(str(tmp_path), load=fake.__getitem__)
    assert [os.path.basename(p) for p in written['ihc']] == [f'field_0{k}.png' for k in range(4)]
    with Image.open(written['ihc'][3]) as img:
        np.testing.assert_array_equal(np.asarray(img), rgb[10:20, 15:30])
    readme = (tmp_path / 'README.md').read_text()
    assert 'No known copyright restrictions' in readme and 'CC0' in readme
    config = folder_config(tmp_path / 'ihc', crop_size=8, crops_per_image=2, eval_fraction=0.25)
    assert len(data_lib.build_source(config, 'train')) == 6
    with pytest.raises(ConfigError, match='unknown bundled'):
        prepare_microscopy.prepare(str(tmp_path), names=('lena',), load=fake.__getitem__)
