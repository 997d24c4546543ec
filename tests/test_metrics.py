"""ganjax.metrics against closed forms and independent numpy/scipy implementations."""

import os

import jax
import numpy as np
import pytest
import scipy.linalg
from jax.sharding import NamedSharding, PartitionSpec as P
from scipy.spatial.distance import cdist

from ganjax import metrics
from ganjax.errors import GanjaxError


def _random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def _fid_scipy(mu1, c1, mu2, c2):
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


def test_frechet_distance_closed_form_diagonal():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    got = metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_scipy_and_handles_singular_covariances():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    c1, c2 = _random_cov(rng, d), _random_cov(rng, d)
    assert metrics.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(
        _fid_scipy(mu1, c1, mu2, c2), rel=1e-9)
    # Rank 2 of 6 (fewer samples than dimensions): finite, >= 0, and the identical case is 0.
    s1, s2 = _random_cov(rng, d, rank=2), _random_cov(rng, d, rank=2)
    value = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value >= 0
    # (sqrt of eigenvalues that are 0 up to 1e-16 rounding: error ~1e-8 on traces of order 1)
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)


def test_accumulated_stats_equal_numpy_and_fid_of_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    d, n = 4, 20000
    mu1, mu2 = np.array([3.0, -1.0, 0.0, 2.0]), np.array([2.5, -1.0, 0.5, 2.0])
    c1, c2 = _random_cov(rng, d) + 0.1 * np.eye(d), _random_cov(rng, d) + 0.1 * np.eye(d)
    x = rng.multivariate_normal(mu1, c1, size=n).astype(np.float32)
    y = rng.multivariate_normal(mu2, c2, size=n).astype(np.float32)
    add = jax.jit(metrics.accumulate)
    sx, sy = metrics.FeatureStats.empty(d), metrics.FeatureStats.empty(d)
    for i in range(0, n, 5000):
        sx, sy = add(sx, x[i:i + 5000]), add(sy, y[i:i + 5000])
    mean, cov = metrics.mean_and_covariance(sx)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False), atol=1e-5)
    fid = metrics.frechet_distance_from_stats(sx, sy)
    # Sampling error of the estimate is a few hundredths here.
    assert fid == pytest.approx(metrics.frechet_distance(mu1, c1, mu2, c2), abs=0.05)


def test_stats_sharded_over_devices_and_merged_equal_one_pass():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(64, 5)) * 3 + 10).astype(np.float32)
    one = metrics.accumulate(metrics.FeatureStats.empty(5), x)
    mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
    sharded = jax.device_put(x, NamedSharding(mesh, P('data', None)))
    many = jax.jit(metrics.accumulate)(metrics.FeatureStats.empty(5), sharded)
    a = metrics.accumulate(metrics.FeatureStats.empty(5), x[:20])
    b = metrics.accumulate(metrics.FeatureStats.empty(5), x[20:])
    merged = metrics.merge(a, b)
    for stats in (many, merged):
        for got, want in zip(metrics.mean_and_covariance(stats), metrics.mean_and_covariance(one)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _mmd2_numpy(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) /
            (m * (m - 1)) - 2 * kxy.mean())


def test_kid_matches_numpy_and_separates_distributions():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (rng.normal(size=(200, 8)) + 0.5).astype(np.float32)
    # One subset of every vector: the unbiased MMD^2 of the whole sets (order does not matter).
    got = metrics.kid(x, y, num_subsets=1, subset_size=200)
    assert got['kid'] == pytest.approx(_mmd2_numpy(x, y), rel=1e-4)
    same = metrics.kid(x, rng.normal(size=(200, 8)).astype(np.float32), num_subsets=20,
                       subset_size=100)
    shifted = metrics.kid(x, y, num_subsets=20, subset_size=100)
    assert abs(same['kid']) < 3 * same['kid_std'] + 1e-3
    assert shifted['kid'] > 10 * same['kid_std']


def _pr_dc_numpy(real, fake, k_pr, k_dc):
    d_rr, d_ff, d_fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    r_real = lambda k: np.sort(d_rr, axis=1)[:, k]
    r_fake = np.sort(d_ff, axis=1)[:, k_pr]
    precision = np.mean((d_fr <= r_real(k_pr)[None, :]).any(axis=1))
    recall = np.mean((d_fr.T <= r_fake[None, :]).any(axis=1))
    inside = d_fr <= r_real(k_dc)[None, :]
    density = inside.sum() / (k_dc * len(fake))
    coverage = np.mean(inside.any(axis=0))
    return precision, recall, density, coverage


def test_precision_recall_density_coverage_match_brute_force():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(150, 3)).astype(np.float32)
    fake = (rng.normal(size=(120, 3)) * 0.6 + 0.8).astype(np.float32)
    pr = metrics.precision_recall(real, fake, k=3, chunk=64)
    dc = metrics.density_coverage(real, fake, k=5, chunk=64)
    p, r, den, cov = _pr_dc_numpy(real, fake, 3, 5)
    assert pr['precision'] == pytest.approx(p) and pr['recall'] == pytest.approx(r)
    assert dc['density'] == pytest.approx(den) and dc['coverage'] == pytest.approx(cov)
    # A narrow fake set: high precision, low recall.
    assert pr['precision'] > pr['recall']


def test_inception_score_hand_values():
    # Every example certain of its own class, classes balanced: IS = number of classes.
    probs = np.tile(np.eye(4), (5, 1))
    assert metrics.inception_score(probs, splits=5)['is'] == pytest.approx(4.0)
    # Every example uniform over classes: no information, IS = 1.
    assert metrics.inception_score(np.full((20, 4), 0.25), splits=2)['is'] == pytest.approx(1.0)


def test_bad_features_are_clear_errors():
    good = np.zeros((10, 3), np.float32)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(GanjaxError, match='fake holds NaN'):
        metrics.precision_recall(good, bad)
    with pytest.raises(GanjaxError, match='differ in dimension'):
        metrics.kid(good, np.zeros((10, 4), np.float32))
    with pytest.raises(GanjaxError, match='at least 2'):
        metrics.mean_and_covariance(metrics.FeatureStats.empty(3))


def test_feature_classifier_trains_saves_and_loads(tmp_path):
    from ganjax import config as config_lib
    from ganjax import data
    from ganjax.errors import ConfigError
    from ganjax.metrics import features

    config = config_lib.default_config()
    out = str(tmp_path / 'features')
    info = features.train_classifier(config.data, out, epochs=1, log=lambda m: None)
    assert info['num_classes'] == 10 and info['data_shape'] == [28, 28, 1]
    # One epoch on 4,500 digits already beats chance by far (97%+ takes the default 20 epochs).
    assert info['held_out_accuracy'] > 0.5
    extract, loaded = features.load_classifier_features(out)
    assert loaded == info
    eval_source = data.build_source(config.data, 'eval')
    # The features take the model's range: real data goes through its source's scaling.
    to_model = eval_source.scaling.to_model
    held_out = to_model(eval_source.get_batch(np.arange(200))['x'])
    train = to_model(data.build_source(config.data, 'train').get_batch(np.arange(200))['x'])
    f_eval, f_train = np.asarray(extract(held_out)), np.asarray(extract(train))
    assert f_eval.shape == (200, features.FEATURE_DIM) and np.all(np.isfinite(f_eval))
    # Real against real: a small distance, smaller than real against noise.
    stats = lambda f: metrics.accumulate(metrics.FeatureStats.empty(f.shape[1]), f)
    noise = np.asarray(extract(to_model(np.random.default_rng(0).integers(
        0, 256, held_out.shape, dtype=np.uint8))))
    floor = metrics.frechet_distance_from_stats(stats(f_train), stats(f_eval))
    assert floor < metrics.frechet_distance_from_stats(stats(f_train), stats(noise))
    with pytest.raises(ConfigError, match='ganjax train-features'):
        features.load_classifier_features(str(tmp_path / 'none'))


def test_raw_features_flatten_model_range_values():
    from ganjax.metrics import features
    x = np.full((3, 2, 2, 1), 0.5, np.float32)
    np.testing.assert_allclose(features.raw_features(x), np.full((3, 4), 0.5))
    v = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(features.raw_features(v), v)


def test_mode_statistics_hand_values():
    from ganjax.data.toy import ring8_centers
    from ganjax.metrics.modes import mode_statistics
    centers = ring8_centers()
    # 100 samples on each of 4 modes (within 3 std), 50 far from every mode.
    rng = np.random.default_rng(5)
    near = np.concatenate([centers[i] + 0.01 * rng.normal(size=(100, 2)) for i in (0, 2, 4, 6)])
    far = np.zeros((50, 2))
    stats = mode_statistics(np.concatenate([near, far]), centers, std=0.02)
    assert stats['modes_covered'] == 4 and stats['num_modes'] == 8
    assert stats['high_quality'] == pytest.approx(400 / 450)
    # Uniform over 4 of 8 modes: KL = sum 1/4 log((1/4) / (1/8)) = log 2.
    assert stats['kl_to_uniform'] == pytest.approx(np.log(2))
    assert stats['counts'] == [100, 0, 100, 0, 100, 0, 100, 0]
    # Every mode evenly: 8 covered, KL 0; nothing near a mode: 0 covered, KL undefined.
    even = np.repeat(centers, 10, axis=0)
    assert mode_statistics(even, centers, 0.02)['kl_to_uniform'] == pytest.approx(0.0)
    none = mode_statistics(far, centers, 0.02)
    assert none['modes_covered'] == 0 and none['high_quality'] == 0 and np.isnan(
        none['kl_to_uniform'])


def test_default_classifier_folder_names_the_data_not_only_its_loader():
    from ganjax import config as config_lib
    from ganjax.metrics import features
    data_config = config_lib.default_config().data
    assert features.default_features_dir(data_config) == os.path.join('features', 'mnist_5k')
    data_config.name, data_config.tfds_name = 'tfds', 'cifar10'
    assert features.default_features_dir(data_config) == os.path.join('features', 'tfds_cifar10')
    data_config.name, data_config.path = 'image_folder', '/data/cells/'
    assert features.default_features_dir(data_config) == os.path.join('features',
                                                                      'image_folder_cells')
    data_config.name, data_config.path = 'csv', '/data/expression.csv'
    assert features.default_features_dir(data_config) == os.path.join('features',
                                                                      'csv_expression')
