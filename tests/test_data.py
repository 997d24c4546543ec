"""Tests of ganjax.data: datasets, transforms and the batch iterator (host-side, no jax)."""

import collections
import gzip
import os
import subprocess
import sys
import threading
import time

import ml_collections
import numpy as np
import pytest
from PIL import Image

from ganjax import data as data_lib
from ganjax.data import embedded, image_folder, tfds_source, toy, transforms
from ganjax.data.iterator import BatchIterator
from ganjax.data.scaling import Scaling
from ganjax.data.source import ArraySource, holdout_indices
from ganjax.errors import ConfigError, DataError


def make_config(**overrides):
    """A data config with the spec's defaults, overridden by keyword."""
    values = dict(name='mnist_5k', tfds_name='', data_dir='', path='', image_size=0, channels=0,
                  eval_fraction=0.1, split_seed=0, batch_size=64, prefetch=2)
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def row_counter(x):
    """Multiset of the rows of x (as bytes), to compare splits without relying on order."""
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return collections.Counter(row.tobytes() for row in flat)


def all_batch(source):
    return source.get_batch(np.arange(len(source)))


# --------------------------------------------------------------------------------------------
# Registry and options


def test_registry_lists_datasets_and_rejects_unknown_names():
    assert set(data_lib.DATASETS) == {'mnist_5k', 'tfds', 'image_folder', 'csv', 'fasta',
                                      'ring8', 'grid25', 'expression', 'pbmc68k_reduced'}
    with pytest.raises(ConfigError, match=r"no_such_data.*mnist_5k"):
        data_lib.build_source(make_config(name='no_such_data'), 'train')


@pytest.mark.parametrize('overrides,split,pattern', [
    ({}, 'test', 'split'),
    ({'channels': 2}, 'train', 'channels'),
    ({'image_size': -1}, 'train', 'image_size'),
    ({'eval_fraction': 1.0}, 'train', 'eval_fraction'),
    ({'split_seed': -3}, 'train', 'split_seed'),
])
def test_bad_options_raise_config_error(overrides, split, pattern):
    with pytest.raises(ConfigError, match=pattern):
        data_lib.build_source(make_config(**overrides), split)


def test_data_package_does_not_import_jax():
    code = ('import sys, ganjax.data; '
            'bad = [m for m in ("jax", "flax", "tensorflow") if m in sys.modules]; '
            'print(bad); sys.exit(1 if bad else 0)')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env,
                            cwd=root, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# mnist_5k


def test_mnist_5k_loads_and_is_cached():
    # No time limit here (a loaded CI machine made one flaky); the cache is what keeps it cheap.
    embedded.load_mnist_5k.cache_clear()
    images, labels = embedded.load_mnist_5k()
    assert embedded.load_mnist_5k()[0] is images  # Cached per process.
    assert images.shape == (5000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 500))
    # Real digits: mostly black background, bright strokes (MNIST mean is ~33 of 255).
    assert images.max() == 255 and 20 < images.mean() < 50
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1  # The shared cache is read-only.


def test_mnist_5k_split_is_a_stratified_shuffled_partition():
    train = data_lib.build_source(make_config(), 'train')
    ev = data_lib.build_source(make_config(), 'eval')
    assert (len(train), len(ev)) == (4500, 500)
    assert train.data_shape == ev.data_shape == (28, 28, 1)
    assert train.num_classes == 10 and train.dtype == np.uint8
    tb, eb = all_batch(train), all_batch(ev)
    assert tb['x'].dtype == np.uint8 and tb['label'].dtype == np.int32
    assert tb['x'].shape == (4500, 28, 28, 1)
    assert set(np.unique(tb['label'])) == set(range(10))
    # Stratified: every class gives exactly 10% to eval, though rows are sorted by class.
    np.testing.assert_array_equal(np.bincount(eb['label'], minlength=10), np.full(10, 50))
    # Train and eval together are exactly the 5000 images (so disjoint and complete).
    images, _ = embedded.load_mnist_5k()
    assert row_counter(tb['x']) + row_counter(eb['x']) == row_counter(images)
    assert not set(row_counter(tb['x'])) & set(row_counter(eb['x']))
    # The same seed gives the same split, another seed another one.
    again = all_batch(data_lib.build_source(make_config(), 'eval'))
    np.testing.assert_array_equal(again['x'], eb['x'])
    other = all_batch(data_lib.build_source(make_config(split_seed=1), 'eval'))
    assert row_counter(other['x']) != row_counter(eb['x'])


def test_mnist_5k_eval_fraction_controls_split_size():
    ev = data_lib.build_source(make_config(eval_fraction=0.25), 'eval')
    assert len(ev) == 1250
    full = data_lib.build_source(make_config(eval_fraction=0.0), 'train')
    assert len(full) == 5000
    with pytest.raises(DataError, match='eval split is empty'):
        data_lib.build_source(make_config(eval_fraction=0.0), 'eval')


def test_mnist_5k_resizes_and_converts_channels():
    src = data_lib.build_source(make_config(image_size=32, channels=3), 'eval')
    assert src.data_shape == (32, 32, 3)
    x = all_batch(src)['x']
    assert x.shape == (500, 32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], x[..., 1])
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    native = all_batch(data_lib.build_source(make_config(), 'eval'))['x']
    # Upsampling keeps the ink: mean brightness within a few percent, per image.
    np.testing.assert_allclose(x[..., 0].mean(axis=(1, 2)), native.mean(axis=(1, 2, 3)),
                               rtol=0.1, atol=2)
    small = data_lib.build_source(make_config(image_size=14), 'eval')
    assert small.get_batch(np.arange(3))['x'].shape == (3, 14, 14, 1)


def test_get_batch_rejects_out_of_range_indices():
    src = data_lib.build_source(make_config(), 'eval')
    with pytest.raises(IndexError):
        src.get_batch(np.array([0, 500]))
    with pytest.raises(IndexError):
        src.get_batch(np.array([-1]))
    assert src.get_batch(np.array([], np.int64))['x'].shape == (0, 28, 28, 1)


def test_data_spec():
    spec = data_lib.data_spec(data_lib.build_source(make_config(name='ring8'), 'train'))
    assert spec == data_lib.DataSpec((2,), np.dtype(np.float32), 8, Scaling.identity())


# --------------------------------------------------------------------------------------------
# Transforms and hold-out


def test_convert_channels_matches_pil_luma():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1, 9, 7, 3), dtype=np.uint8)
    gray = transforms.convert_channels(rgb, 1)
    pil = np.asarray(Image.fromarray(rgb[0], 'RGB').convert('L'))
    assert gray.shape == (1, 9, 7, 1)
    assert np.abs(gray[0, ..., 0].astype(int) - pil.astype(int)).max() <= 1
    rgba = np.concatenate([rgb, np.full((1, 9, 7, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(transforms.convert_channels(rgba, 3), rgb)
    np.testing.assert_array_equal(transforms.convert_channels(gray, 3)[..., 2], gray[..., 0])
    with pytest.raises(ConfigError):
        transforms.convert_channels(np.zeros((2, 2, 5), np.uint8), 3)


def test_resize_square_center_crops():
    # 10 tall x 30 wide: only the middle third is white, so the center square is all white.
    img = np.zeros((10, 30, 1), np.uint8)
    img[:, 10:20] = 255
    out = transforms.resize_square(img, 5)
    assert out.shape == (5, 5, 1)
    assert out.min() >= 250
    tall = np.zeros((30, 10, 3), np.uint8)
    tall[10:20] = (10, 200, 30)
    np.testing.assert_allclose(transforms.resize_square(tall, 20), np.broadcast_to(
        np.array([10, 200, 30]), (20, 20, 3)), atol=2)
    floats = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8, 1)
    out = transforms.resize_square(floats, 4)
    assert out.dtype == np.float32 and out.shape == (4, 4, 1)
    assert abs(out.mean() - floats.mean()) < 0.02


def test_holdout_indices_unstratified_and_stratified():
    train = holdout_indices(101, 0.2, 3, 'train')
    ev = holdout_indices(101, 0.2, 3, 'eval')
    assert len(ev) == 20 and len(train) == 81
    assert sorted(np.concatenate([train, ev]).tolist()) == list(range(101))
    # Uneven classes: the total is still round(n * fraction), spread proportionally.
    labels = np.repeat([0, 1, 2], [7, 13, 30])
    ev = holdout_indices(50, 0.3, 0, 'eval', labels=labels)
    assert len(ev) == 15
    counts = np.bincount(labels[ev], minlength=3)
    assert np.all(np.abs(counts - np.array([7, 13, 30]) * 0.3) < 1)


# --------------------------------------------------------------------------------------------
# tfds (through tfds.testing.mock_data: no files, no TensorFlow)


def test_tfds_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds
    config = make_config(name='tfds', tfds_name='mnist', data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=24):
        train = data_lib.build_source(config, 'train')
        ev = data_lib.build_source(config, 'eval')
        assert ev.tfds_split == 'test'
        assert len(train) == 24 and train.data_shape == (28, 28, 1) and train.num_classes == 10
        batch = train.get_batch(np.array([3, 0, 7]))
        assert batch['x'].shape == (3, 28, 28, 1) and batch['x'].dtype == np.uint8
        assert batch['label'].dtype == np.int32
        assert np.all((batch['label'] >= 0) & (batch['label'] < 10))

        resized = data_lib.build_source(
            make_config(name='tfds', tfds_name='mnist', image_size=32, channels=3), 'train')
        assert resized.data_shape == (32, 32, 3)
        big = resized.get_batch(np.array([3, 0, 7]))
        assert big['x'].shape == (3, 32, 32, 3)
        np.testing.assert_array_equal(big['label'], batch['label'])
        np.testing.assert_array_equal(big['x'][..., 0], big['x'][..., 2])

        with BatchIterator(train, 8, seed=0, prefetch=2) as it:
            got = [next(it) for _ in range(4)]
        assert all(b['x'].shape == (8, 28, 28, 1) for b in got)


def test_tfds_holds_out_train_without_eval_split(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds
    monkeypatch.setattr(tfds_source, '_known_splits', lambda name, data_dir: {'train'})
    config = make_config(name='tfds', tfds_name='mnist', eval_fraction=0.25)
    with tfds.testing.mock_data(num_examples=40):
        train = data_lib.build_source(config, 'train')
        ev = data_lib.build_source(config, 'eval')
        assert (len(train), len(ev)) == (30, 10)
        assert train.tfds_split == ev.tfds_split == 'train'
        tx, ex = all_batch(train)['x'], all_batch(ev)['x']
    # Random mock images: disjoint hold-out means no shared image.
    assert not set(row_counter(tx)) & set(row_counter(ex))


@pytest.fixture(scope='session')
def prepared_tfds_dir(tmp_path_factory):
    """A data_dir with two tiny datasets really prepared as array_record (no TensorFlow needed:
    Tensor features serialize without it, unlike encoded Image features)."""
    import tensorflow_datasets as tfds

    def make_builder(class_name, splits):
        def info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                'image': tfds.features.Tensor(shape=(6, 8, 3), dtype=np.uint8),
                'label': tfds.features.ClassLabel(num_classes=3)}))

        def split_generators(self, dl_manager):
            del dl_manager
            return {name: self._generate_examples(offset, n) for name, (offset, n) in
                    splits.items()}

        def generate_examples(self, offset, n):
            for i in range(offset, offset + n):
                yield i, {'image': np.full((6, 8, 3), i, np.uint8), 'label': i % 3}

        # Defining the class registers it with tfds under the snake-case name.
        return type(class_name, (tfds.core.GeneratorBasedBuilder,), {
            'VERSION': tfds.core.Version('1.0.0'), '_info': info,
            '_split_generators': split_generators, '_generate_examples': generate_examples})

    root = tmp_path_factory.mktemp('tfds')
    for cls in (make_builder('GanjaxTinyWithTest', {'train': (0, 12), 'test': (100, 5)}),
                make_builder('GanjaxTinyTrainOnly', {'train': (0, 20)})):
        cls(data_dir=str(root), file_format='array_record').download_and_prepare()
    return str(root)


def test_tfds_reads_prepared_array_record(prepared_tfds_dir):
    config = make_config(name='tfds', tfds_name='ganjax_tiny_with_test', data_dir=prepared_tfds_dir)
    train = data_lib.build_source(config, 'train')
    ev = data_lib.build_source(config, 'eval')
    assert (len(train), len(ev)) == (12, 5) and ev.tfds_split == 'test'
    assert train.data_shape == (6, 8, 3) and train.num_classes == 3
    tb, eb = all_batch(train), all_batch(ev)
    # Each example's pixels hold its id, and its label is id % 3.
    assert sorted(tb['x'][:, 0, 0, 0].tolist()) == list(range(12))
    assert sorted(eb['x'][:, 0, 0, 0].tolist()) == list(range(100, 105))
    np.testing.assert_array_equal(tb['label'], tb['x'][:, 0, 0, 0] % 3)

    small = data_lib.build_source(make_config(name='tfds', tfds_name='ganjax_tiny_with_test',
                                              data_dir=prepared_tfds_dir, image_size=4,
                                              channels=1), 'train')
    assert small.data_shape == (4, 4, 1)
    sb = all_batch(small)
    assert sb['x'].shape == (12, 4, 4, 1)
    np.testing.assert_array_equal(sb['x'][:, 2, 2, 0], tb['x'][:, 0, 0, 0])

    config = make_config(name='tfds', tfds_name='ganjax_tiny_train_only',
                         data_dir=prepared_tfds_dir, eval_fraction=0.25)
    train = data_lib.build_source(config, 'train')
    ev = data_lib.build_source(config, 'eval')
    assert (len(train), len(ev)) == (15, 5) and ev.tfds_split == 'train'
    ids = np.concatenate([all_batch(train)['x'][:, 0, 0, 0], all_batch(ev)['x'][:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(20))


def test_tfds_unprepared_dataset_explains_how_to_prepare(tmp_path):
    config = make_config(name='tfds', tfds_name='mnist', data_dir=str(tmp_path))
    with pytest.raises(DataError) as info:
        data_lib.build_source(config, 'train')
    message = str(info.value)
    assert 'not prepared' in message and str(tmp_path) in message
    assert 'download_and_prepare' in message and 'array_record' in message
    assert 'ganjax[prepare]' in message


def test_tfds_bad_names(tmp_path):
    with pytest.raises(DataError, match='no dataset named'):
        data_lib.build_source(make_config(name='tfds', tfds_name='no_such_dataset_xyz',
                                          data_dir=str(tmp_path)), 'train')
    with pytest.raises(ConfigError, match='tfds_name'):
        data_lib.build_source(make_config(name='tfds'), 'train')


# --------------------------------------------------------------------------------------------
# image_folder


COLORS = {
    'cats/a.png': ('RGB', (40, 30), (255, 0, 0)),
    'cats/b.jpg': ('L', (50, 50), 128),
    'dogs/c.png': ('RGBA', (20, 60), (0, 0, 255, 255)),
    'dogs/sub/d.jpeg': ('RGB', (64, 48), (0, 255, 0)),
}


def write_images(root, spec):
    for rel, (mode, size, color) in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, size, color).save(path, quality=95)


def test_image_folder_mixed_sizes_modes_and_classes(tmp_path):
    write_images(tmp_path, COLORS)
    (tmp_path / 'dogs' / 'notes.txt').write_text('not an image')
    (tmp_path / 'cats' / '.hidden.png').write_bytes(b'ignored: hidden')
    config = make_config(name='image_folder', path=str(tmp_path), image_size=16, eval_fraction=0)
    src = data_lib.build_source(config, 'train')
    assert len(src) == 4 and src.data_shape == (16, 16, 3) and src.dtype == np.uint8
    assert src.class_names == ('cats', 'dogs') and src.num_classes == 2
    assert src.files == tuple(sorted(COLORS))
    batch = all_batch(src)
    np.testing.assert_array_equal(batch['label'], [0, 0, 1, 1])
    expected = [(255, 0, 0), (128, 128, 128), (0, 0, 255), (0, 255, 0)]
    for img, color in zip(batch['x'], expected):
        np.testing.assert_allclose(img.reshape(-1, 3).mean(axis=0), color, atol=4)

    gray = data_lib.build_source(make_config(name='image_folder', path=str(tmp_path),
                                             image_size=8, channels=1, eval_fraction=0), 'train')
    assert gray.data_shape == (8, 8, 1)
    assert abs(int(all_batch(gray)['x'][1].mean()) - 128) <= 3


def test_image_folder_native_size_grayscale_and_holdout(tmp_path):
    for i in range(10):
        Image.new('L', (12 + i, 9), i * 20).save(tmp_path / f'img{i:02d}.png')
    config = make_config(name='image_folder', path=str(tmp_path), eval_fraction=0.2)
    train = data_lib.build_source(config, 'train')
    ev = data_lib.build_source(config, 'eval')
    # Native size: the shorter side of the first file; all files grayscale -> 1 channel.
    assert train.data_shape == (9, 9, 1)
    assert (len(train), len(ev)) == (8, 2)
    assert train.num_classes == 0 and np.all(all_batch(train)['label'] == -1)
    assert not set(train.files) & set(ev.files)
    values = sorted(int(v) for v in np.concatenate([all_batch(train)['x'],
                                                    all_batch(ev)['x']]).mean(axis=(1, 2, 3)))
    assert values == [i * 20 for i in range(10)]


def test_image_folder_sees_new_files(tmp_path):
    write_images(tmp_path, {'a.png': ('RGB', (8, 8), (1, 2, 3))})
    config = make_config(name='image_folder', path=str(tmp_path), eval_fraction=0)
    assert len(data_lib.build_source(config, 'train')) == 1
    write_images(tmp_path, {'b.png': ('RGB', (8, 8), (1, 2, 3))})
    assert len(data_lib.build_source(config, 'train')) == 2


def test_image_folder_corrupt_files_are_named(tmp_path):
    write_images(tmp_path, COLORS)
    garbage = tmp_path / 'cats' / 'broken.png'
    garbage.write_bytes(b'\x89PNG not really a png at all')
    config = make_config(name='image_folder', path=str(tmp_path), image_size=8)
    with pytest.raises(DataError, match='broken.png'):
        data_lib.build_source(config, 'train')
    garbage.unlink()
    # A JPEG whose header is intact but whose pixel data is cut off fails only when decoded.
    full = (tmp_path / 'dogs' / 'sub' / 'd.jpeg').read_bytes()
    (tmp_path / 'dogs' / 'truncated.jpg').write_bytes(full[:len(full) // 2])
    with pytest.raises(DataError, match='truncated.jpg'):
        data_lib.build_source(config, 'train')


def test_image_folder_missing_or_empty(tmp_path):
    missing = tmp_path / 'nope'
    with pytest.raises(DataError, match='nope'):
        data_lib.build_source(make_config(name='image_folder', path=str(missing)), 'train')
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('no images here')
    with pytest.raises(DataError, match='empty.*no image files'):
        data_lib.build_source(make_config(name='image_folder', path=str(empty)), 'train')
    with pytest.raises(ConfigError, match='data.path'):
        data_lib.build_source(make_config(name='image_folder'), 'train')


def test_image_folder_extensions_include_common_formats():
    assert {'.png', '.jpg', '.jpeg', '.bmp', '.gif'} <= image_folder.image_extensions()


def sixteen_bit(seed, shape=(6, 6)):
    """Pixels over the whole 16-bit range, most of them above 255."""
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def test_image_folder_reads_16bit_png_and_tiff_exactly(tmp_path):
    import tifffile
    images = {f'c{i}.png': sixteen_bit(i) for i in range(3)}
    for name, pixels in images.items():
        Image.fromarray(pixels).save(tmp_path / name)  # PIL writes a 16-bit PNG ('I;16')
    gray_tiff = sixteen_bit(3)
    tifffile.imwrite(tmp_path / 'c3.tif', gray_tiff)
    images['c3.tif'] = gray_tiff
    config = make_config(name='image_folder', path=str(tmp_path), eval_fraction=0)
    src = data_lib.build_source(config, 'train')
    assert src.dtype == np.uint16 and src.data_shape == (6, 6, 1)
    assert src.scaling == Scaling.image(16)
    x = all_batch(src)['x']
    for got, name in zip(x, src.files):
        np.testing.assert_array_equal(got[..., 0], images[name])
    assert (x > 255).mean() > 0.9  # nothing clipped to 8 bits
    np.testing.assert_array_equal(src.scaling.to_data(src.scaling.to_model(x)), x)
    # Resizing and channel conversion keep 16 bits.
    rgb = data_lib.build_source(make_config(name='image_folder', path=str(tmp_path),
                                            eval_fraction=0, image_size=4, channels=3), 'train')
    big = all_batch(rgb)['x']
    assert big.dtype == np.uint16 and big.shape == (4, 4, 4, 3) and big.max() > 255


def test_image_folder_reads_16bit_colour_tiff(tmp_path):
    import tifffile
    pixels = np.random.default_rng(0).integers(0, 65536, (5, 5, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / 'a.tiff', pixels, photometric='rgb')
    src = data_lib.build_source(make_config(name='image_folder', path=str(tmp_path),
                                            eval_fraction=0), 'train')
    assert src.data_shape == (5, 5, 3) and src.scaling == Scaling.image(16)
    np.testing.assert_array_equal(all_batch(src)['x'][0], pixels)


def test_image_folder_refuses_mixed_bit_depths_and_lossy_16bit_files(tmp_path):
    import tifffile
    Image.fromarray(sixteen_bit(0)).save(tmp_path / 'deep.png')
    Image.new('L', (6, 6), 7).save(tmp_path / 'shallow.png')
    config = make_config(name='image_folder', path=str(tmp_path), eval_fraction=0)
    with pytest.raises(DataError, match=r"mixes 8-bit .*shallow.png.* 16-bit .*deep.png"):
        data_lib.build_source(config, 'train')
    # A 4-D array is not one image (a stack of pages [C, H, W] is: tests/test_microscopy.py).
    stack = tmp_path / 'stack'
    stack.mkdir()
    tifffile.imwrite(stack / 's.tif', np.zeros((2, 5, 6, 6), np.uint16))
    with pytest.raises(DataError, match=r's.tif.*one image per file'):
        data_lib.build_source(make_config(name='image_folder', path=str(stack)), 'train')
    floats = tmp_path / 'floats'
    floats.mkdir()
    tifffile.imwrite(floats / 'f.tif', np.zeros((6, 6), np.float32))
    with pytest.raises(DataError, match=r'f.tif.*float32 pixels'):
        data_lib.build_source(make_config(name='image_folder', path=str(floats)), 'train')


def test_16bit_colour_png_is_refused_not_truncated(tmp_path):
    # PIL cannot write one, so the PNG is assembled by hand: 2x3 RGB at 16 bits per sample.
    import struct
    import zlib

    def chunk(kind, payload):
        return (struct.pack('>I', len(payload)) + kind + payload +
                struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))

    rgb = (np.arange(18, dtype='>u2').reshape(2, 3, 3) * 3000)
    raw = b''.join(b'\x00' + row.tobytes() for row in rgb)
    png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 3, 2, 16, 2, 0, 0, 0)) +
           chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
    (tmp_path / 'rgb16.png').write_bytes(png)
    with pytest.raises(DataError, match=r'rgb16.png.*16-bit RGB PNG.*TIFF'):
        data_lib.build_source(make_config(name='image_folder', path=str(tmp_path)), 'train')


def test_every_dataset_declares_its_scaling(tmp_path):
    import tensorflow_datasets as tfds
    Image.new('RGB', (8, 8), (9, 9, 9)).save(tmp_path / 'a.png')
    Image.new('RGB', (8, 8), (9, 9, 9)).save(tmp_path / 'b.png')
    table = tmp_path / 't.csv'
    table.write_text('a,b\n' + '\n'.join(f'{i},{2 * i}' for i in range(20)) + '\n')
    sequences = tmp_path / 's.fa'
    sequences.write_text(''.join(f'>s{i}\nACGTTGCA\n' for i in range(10)))
    configs = {
        'mnist_5k': (make_config(), Scaling.image(8)),
        'tfds': (make_config(name='tfds', tfds_name='mnist', data_dir=str(tmp_path)),
                 Scaling.image(8)),
        'image_folder': (make_config(name='image_folder', path=str(tmp_path), eval_fraction=0.5),
                         Scaling.image(8)),
        'csv': (make_config(name='csv', path=str(table)), Scaling.identity()),
        'fasta': (make_config(name='fasta', path=str(sequences)), Scaling.one_hot('uint8')),
        'ring8': (make_config(name='ring8'), Scaling.identity()),
        'grid25': (make_config(name='grid25'), Scaling.identity()),
        'expression': (make_config(name='expression', path=str(table)), Scaling.identity()),
        'pbmc68k_reduced': (make_config(name='pbmc68k_reduced'), Scaling.identity()),
    }
    assert set(configs) == set(data_lib.DATASETS)
    with tfds.testing.mock_data(num_examples=8):
        for name, (config, expected) in configs.items():
            train, ev = (data_lib.build_source(config, split) for split in ('train', 'eval'))
            assert isinstance(train, data_lib.Source), name
            assert train.scaling == expected and ev.scaling == expected, name
            assert train.scaling.dtype == np.dtype(train.dtype).name, name
            x = train.get_batch(np.arange(min(2, len(train))))['x']
            assert train.scaling.to_model(x).dtype == np.float32, name
            assert data_lib.data_spec(train).scaling == expected, name


# --------------------------------------------------------------------------------------------
# csv


def test_csv_with_header_and_label_column(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 3)).astype(np.float32) * 1000
    labels = np.arange(40) % 4
    lines = ['gene_a,label,gene_b,gene_c']
    lines += [f'{v[0]!r},{y},{v[1]!r},{v[2]!r}' for v, y in zip(values.tolist(), labels)]
    path = tmp_path / 'expr.csv'
    path.write_text('\n'.join(lines) + '\n')
    config = make_config(name='csv', path=str(path), eval_fraction=0.25)
    train = data_lib.build_source(config, 'train')
    ev = data_lib.build_source(config, 'eval')
    assert (len(train), len(ev)) == (30, 10)
    assert train.data_shape == (3,) and train.dtype == np.float32 and train.num_classes == 4
    assert train.columns == ('gene_a', 'gene_b', 'gene_c')
    # 2.5 per class: the two rounding-up slots go to the first classes (largest remainder).
    np.testing.assert_array_equal(np.bincount(all_batch(ev)['label']), [3, 3, 2, 2])
    # Values are returned exactly as written: no standardization.
    full = data_lib.build_source(make_config(name='csv', path=str(path), eval_fraction=0),
                                 'train')
    batch = all_batch(full)
    np.testing.assert_array_equal(batch['x'], values)
    np.testing.assert_array_equal(batch['label'], labels)


def test_csv_without_header_tsv_gzip_and_text_labels(tmp_path):
    path = tmp_path / 'plain.csv'
    path.write_text('1,2.5\n3,-4e2\n\n5,6\n7,8\n')
    src = data_lib.build_source(make_config(name='csv', path=str(path), eval_fraction=0),
                                'train')
    assert src.num_classes == 0 and src.data_shape == (2,)
    np.testing.assert_array_equal(all_batch(src)['x'], [[1, 2.5], [3, -400], [5, 6], [7, 8]])
    np.testing.assert_array_equal(all_batch(src)['label'], [-1] * 4)

    tsv = tmp_path / 'named.tsv.gz'
    with gzip.open(tsv, 'wt') as f:
        f.write('x\ty\tLabel\n' + ''.join(f'{i}\t{-i}\t{"tumor" if i % 2 else "normal"}\n'
                                          for i in range(6)))
    src = data_lib.build_source(make_config(name='csv', path=str(tsv), eval_fraction=0),
                                'train')
    assert src.class_names == ('normal', 'tumor') and src.num_classes == 2
    np.testing.assert_array_equal(all_batch(src)['label'], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(all_batch(src)['x'][:, 1], -np.arange(6))


@pytest.mark.parametrize('cell,what', [('nan', 'NaN'), ('inf', 'infinite'), ('1e39', 'infinite'),
                                       ('abc', 'not a number'), ('', 'empty cell')])
def test_csv_bad_cell_names_row_and_column(tmp_path, cell, what):
    path = tmp_path / 'bad.csv'
    path.write_text(f'a,b,c\n1,2,3\n4,5,6\n7,{cell},9\n')
    with pytest.raises(DataError) as info:
        data_lib.build_source(make_config(name='csv', path=str(path)), 'train')
    message = str(info.value)
    assert 'bad.csv' in message and 'line 4' in message and "'b'" in message
    assert what in message


def test_csv_standardize_uses_training_statistics_for_both_splits(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 2)) * [10.0, 0.5] + [1000.0, -50.0]
    path = tmp_path / 'expr.csv'
    path.write_text('g1,g2\n' + '\n'.join(f'{a:.6f},{b:.6f}' for a, b in values) + '\n')
    raw = data_lib.build_source(make_config(name='csv', path=str(path), eval_fraction=0.25),
                                'train')
    config = make_config(name='csv', path=str(path), standardize=True, eval_fraction=0.25)
    train, ev = data_lib.build_source(config, 'train'), data_lib.build_source(config, 'eval')
    # The stored values are untouched; only the declared scaling differs.
    x = all_batch(train)['x']
    np.testing.assert_array_equal(x, all_batch(raw)['x'])
    assert raw.scaling == Scaling.identity()
    assert train.scaling.kind == 'standardized' and ev.scaling == train.scaling
    y = train.scaling.to_model(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(train.scaling.to_data(y), x, rtol=1e-6)
    assert abs(ev.scaling.to_model(all_batch(ev)['x']).mean()) < 0.5
    with pytest.raises(ConfigError, match='data.standardize'):
        data_lib.build_source(make_config(name='csv', path=str(path), standardize='yes'), 'train')


def test_csv_structural_errors(tmp_path):
    for text, pattern in [('', 'empty'), ('\n  \n', 'empty'), ('a,b,label\n', 'no data rows'),
                          ('1,2\n3\n', 'line 2: 1 cells, expected 2'),
                          ('label\n1\n', 'no feature columns'),
                          ('a,label\n1,0.5\n', 'not an integer')]:
        path = tmp_path / 'x.csv'
        path.write_text(text)
        with pytest.raises(DataError, match=pattern):
            data_lib.build_source(make_config(name='csv', path=str(path), eval_fraction=0),
                                  'train')
    with pytest.raises(DataError, match='does not exist'):
        data_lib.build_source(make_config(name='csv', path=str(tmp_path / 'missing.csv')),
                              'train')


# --------------------------------------------------------------------------------------------
# Toy mixtures


@pytest.mark.parametrize('name,centers,std', [('ring8', toy.ring8_centers(), 0.02),
                                              ('grid25', toy.grid25_centers(), 0.05)])
def test_toy_mixture_samples_lie_near_their_modes(name, centers, std):
    src = data_lib.build_source(make_config(name=name), 'train')
    assert src.data_shape == (2,) and src.dtype == np.float32
    assert src.num_classes == len(centers) and len(src) >= 1 << 20
    n = 20000
    batch = src.get_batch(np.arange(n) * 37)
    x, label = batch['x'], batch['label']
    assert x.shape == (n, 2) and x.dtype == np.float32 and label.dtype == np.int32
    residual = x - centers[label]
    assert np.abs(residual).max() < 6 * std
    np.testing.assert_allclose(residual.std(axis=0), std, rtol=0.05)
    np.testing.assert_allclose(residual.mean(axis=0), 0, atol=3 * std / np.sqrt(n) * 2)
    nearest = np.argmin(((x[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, label)
    freq = np.bincount(label, minlength=len(centers)) / n
    np.testing.assert_allclose(freq, 1 / len(centers), rtol=0.2)
    if name == 'ring8':
        np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
    else:
        assert sorted(set(centers[:, 0].tolist())) == [-4, -2, 0, 2, 4]


def test_toy_is_deterministic_per_index():
    src = data_lib.build_source(make_config(name='ring8'), 'train')
    a = src.get_batch(np.array([5, 9, 1000]))
    b = src.get_batch(np.array([1000, 5]))
    np.testing.assert_array_equal(a['x'][[2, 0]], b['x'])
    np.testing.assert_array_equal(a['label'][[2, 0]], b['label'])
    again = data_lib.build_source(make_config(name='ring8'), 'train').get_batch(np.array([5]))
    np.testing.assert_array_equal(again['x'][0], a['x'][0])
    ev = data_lib.build_source(make_config(name='ring8'), 'eval').get_batch(np.array([5, 9]))
    other = data_lib.build_source(make_config(name='ring8', split_seed=1),
                                  'train').get_batch(np.array([5, 9]))
    assert not np.array_equal(ev['x'], a['x'][:2])
    assert not np.array_equal(other['x'], a['x'][:2])


# --------------------------------------------------------------------------------------------
# BatchIterator


def index_source(n):
    """A source whose example i is the value i, so batches show their indices."""
    return ArraySource(np.arange(n, dtype=np.int64)[:, None], np.arange(n) % 3, num_classes=3,
                       name=f'range({n})', scaling=Scaling.identity(np.int64))


def take(it, count):
    return [next(it)['x'][:, 0] for _ in range(count)]


def test_iterator_is_deterministic_in_the_seed():
    src = index_source(50)
    with BatchIterator(src, 8, seed=3) as a, BatchIterator(src, 8, seed=3) as b, \
            BatchIterator(src, 8, seed=4) as c:
        xa, xb, xc = take(a, 10), take(b, 10), take(c, 10)
    np.testing.assert_array_equal(np.stack(xa), np.stack(xb))
    assert not np.array_equal(np.stack(xa), np.stack(xc))


def test_iterator_epochs_see_every_example_once_and_reshuffle():
    src = index_source(48)
    with BatchIterator(src, 8, seed=0, prefetch=1) as it:
        assert it.batches_per_epoch == 6
        epochs = [np.concatenate(take(it, 6)) for _ in range(3)]
        assert it.position == 18 and it.epoch == 3
    for order in epochs:
        assert sorted(order.tolist()) == list(range(48))
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    # With a remainder: 6 full batches per epoch, the 2 left over are dropped, never repeated.
    with BatchIterator(index_source(50), 8, seed=0, prefetch=0) as it:
        assert it.batches_per_epoch == 6
        first = np.concatenate(take(it, 6))
    assert len(set(first.tolist())) == 48


def test_iterator_resume_equals_continuing():
    src = index_source(30)
    with BatchIterator(src, 4, seed=11) as it:
        take(it, 10)
        assert it.position == 10
        continued = take(it, 12)
    with BatchIterator(src, 4, seed=11, position=10) as resumed:
        assert resumed.position == 10
        np.testing.assert_array_equal(np.stack(take(resumed, 12)), np.stack(continued))
        assert resumed.position == 22
    with BatchIterator(src, 4, seed=11, prefetch=0) as it:
        np.testing.assert_array_equal(it.batch_at(13)['x'][:, 0], continued[3])
        assert it.position == 0


def test_iterator_process_slices_concatenate_to_the_global_batch():
    src = index_source(64)
    with BatchIterator(src, 16, seed=5, position=7) as whole:
        global_batches = take(whole, 5)
    parts = []
    for p in range(4):
        with BatchIterator(src, 16, seed=5, position=7, process_index=p, process_count=4) as it:
            assert it.local_batch_size == 4
            parts.append(take(it, 5))
    for k in range(5):
        np.testing.assert_array_equal(np.concatenate([parts[p][k] for p in range(4)]),
                                      global_batches[k])


@pytest.mark.parametrize('pipeline', ['thread', 'grain'])
def test_iterator_prefetch_on_and_off_agree_and_position_counts_returned_batches(pipeline):
    src = index_source(40)
    results = []
    for prefetch in (0, 1, 4):
        with BatchIterator(src, 8, seed=2, prefetch=prefetch, pipeline=pipeline) as it:
            time.sleep(0.05 if prefetch else 0)  # Let the thread run ahead.
            assert it.position == 0
            results.append(np.stack(take(it, 13)))
            assert it.position == 13
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_iterator_groups_slices_and_global_indices_equal_the_host_batches():
    # 2 sub-batches of 8 over 2 processes: each process keeps rows 4p..4p+3 of every sub-batch.
    src = index_source(64)
    with BatchIterator(src, 16, seed=9, position=5, prefetch=0) as whole:
        global_indices = [whole.next_global_indices() for _ in range(6)]
        assert whole.position == 11
    parts = []
    for p in range(2):
        with BatchIterator(src, 16, seed=9, position=5, process_index=p, process_count=2,
                           groups=2) as it:
            assert it.local_batch_size == 8
            parts.append(take(it, 6))
    for k in range(6):
        sub = global_indices[k].reshape(2, 8)  # [groups, rows] as train.py splits it.
        for p in range(2):
            np.testing.assert_array_equal(parts[p][k], sub[:, 4 * p:4 * p + 4].reshape(-1))
    with BatchIterator(src, 16, seed=9, prefetch=2) as it:
        with pytest.raises(RuntimeError, match='prefetch=0'):
            it.next_global_indices()


def test_iterator_keeps_the_permutations_of_the_thread_iterator():
    # Batch k reads np.random.default_rng([seed, epoch]).permutation(n) in slices: runs and their
    # checkpoints made before grain read the same batches.
    src = index_source(20)
    with BatchIterator(src, 6, seed=7, prefetch=2) as it:
        got = np.stack(take(it, 7))
    want = np.concatenate([np.random.default_rng([7, e]).permutation(20)[:18].reshape(3, 6)
                           for e in range(3)])[:7]
    np.testing.assert_array_equal(got, want)


def test_iterator_grain_threads_and_worker_processes_give_the_same_batches(prepared_tfds_dir):
    src = index_source(40)
    with BatchIterator(src, 8, seed=1, position=3, prefetch=0) as it:
        want = np.stack(take(it, 9))
    with BatchIterator(src, 8, seed=1, position=3, prefetch=3, pipeline='grain', threads=3) as it:
        np.testing.assert_array_equal(np.stack(take(it, 9)), want)
    # A tfds source (the case workers are for), resumed at position 3, in one worker process
    # (spawned: it imports ganjax and jax, a few seconds).
    tfds = data_lib.build_source(make_config(name='tfds', tfds_name='ganjax_tiny_with_test',
                                             data_dir=prepared_tfds_dir), 'train')
    with BatchIterator(tfds, 4, seed=1, position=3, prefetch=0) as it:
        want = np.stack([next(it)['x'] for _ in range(7)])
    with BatchIterator(tfds, 4, seed=1, position=3, prefetch=2, pipeline='grain',
                       workers=1) as it:
        np.testing.assert_array_equal(np.stack([next(it)['x'] for _ in range(7)]), want)
        assert it.position == 10


def test_iterator_bad_arguments():
    with pytest.raises(DataError, match='fewer than one batch'):
        BatchIterator(index_source(10), 16, seed=0)
    with pytest.raises(ConfigError, match='divisible'):
        BatchIterator(index_source(10), 6, seed=0, process_count=4)
    with pytest.raises(ConfigError, match='process_index'):
        BatchIterator(index_source(10), 4, seed=0, process_index=2, process_count=2)
    with pytest.raises(ConfigError, match='>= 0'):
        BatchIterator(index_source(10), 4, seed=-1)
    with pytest.raises(ConfigError, match='groups=3'):
        BatchIterator(index_source(10), 4, seed=0, groups=3)
    with pytest.raises(ConfigError, match='threads'):
        BatchIterator(index_source(10), 4, seed=0, pipeline='grain', threads=0)
    with pytest.raises(ConfigError, match='need prefetch'):
        BatchIterator(index_source(10), 4, seed=0, prefetch=0, pipeline='grain', workers=2)
    with pytest.raises(ConfigError, match="need pipeline='grain'"):
        BatchIterator(index_source(10), 4, seed=0, workers=2)
    with pytest.raises(ConfigError, match='pipeline must be one of'):
        BatchIterator(index_source(10), 4, seed=0, pipeline='tf.data')
    with pytest.raises(ConfigError, match='workers must be an integer'):
        BatchIterator(index_source(10), 4, seed=0, workers=1.5)


class FailingSource:
    """A source whose reads fail for index 0, to check errors reach the consumer."""

    data_shape, dtype, num_classes, description = (1,), np.dtype(np.int64), 0, 'failing'

    def __len__(self):
        return 8

    def get_batch(self, indices):
        if 0 in indices:
            raise DataError('cannot read example 0')
        return {'x': np.asarray(indices)[:, None], 'label': np.zeros(len(indices), np.int32)}


def reading_threads(pipeline):
    prefix = {'thread': 'ganjax-prefetch', 'grain': 'grain-prefetch'}[pipeline]
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.mark.parametrize('pipeline', ['thread', 'grain'])
def test_iterator_forwards_read_errors_and_close_stops_the_threads(pipeline):
    it = BatchIterator(FailingSource(), 8, seed=0, prefetch=2, pipeline=pipeline)
    with pytest.raises(DataError, match='example 0'):
        next(it)
    with pytest.raises(RuntimeError, match='closed'):
        next(it)  # A failed read closes the iterator.
    it = BatchIterator(index_source(16), 4, seed=0, prefetch=3, pipeline=pipeline)
    next(it)
    threads = reading_threads(pipeline)
    assert threads
    it.close()
    for thread in threads:
        thread.join(timeout=30)  # Each finishes the batch it is reading, then exits.
        assert not thread.is_alive()
    with pytest.raises(RuntimeError, match='closed'):
        next(it)
    assert it.position == 1
