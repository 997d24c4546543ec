"""A user's own losses and penalties: registered from their own module, checked at registration,
trained in the step and in a population, and imported again from a run's config alone."""

import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganjax
from ganjax import config as config_lib, losses, penalties, run_dir, state as state_lib
from ganjax.errors import ConfigError
from ganjax.train_step import build_gan, create_state, make_train_step
from util import ROOT, random_batch, tiny_config

VECTOR = (2,)


@pytest.fixture(autouse=True)
def clean_tables():
    """Every test starts with the built-in tables and leaves them so, with the modules it
    imported forgotten (as a new process would have them)."""
    saved = dict(losses.LOSSES), dict(penalties.PENALTIES)
    before = set(sys.modules)
    yield
    for table, entries in zip((losses.LOSSES, penalties.PENALTIES), saved):
        table.clear()
        table.update(entries)
    for name in set(sys.modules) - before:
        if name.startswith(('_ganjax_import_', 'user_mod_')):
            del sys.modules[name]


def _readme_module(tmp_path) -> str:
    """The README's example module, written to a file: the example is what the tests run."""
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    code = next(b for b in blocks if "@ganjax.register_loss('my_loss')" in b)
    path = tmp_path / 'my_losses.py'
    path.write_text(code)
    return str(path)


def _my_penalty(d_fn, real, fake, rng):
    # R1 with the input gradients of D at the reals, written with the package's helper.
    del fake, rng
    g = penalties.input_gradients(d_fn, real)
    return 0.5 * jnp.mean(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=-1))


def test_a_registered_loss_and_penalty_train_and_join_a_population(tmp_path):
    path = _readme_module(tmp_path)
    ganjax.register_penalty('my_r1')(_my_penalty)
    common = dict(imports=(path,), penalty__name='my_r1', model__d_norm='none',
                  optim__g_lr=1e-3, optim__d_lr=2e-3)
    # tiny_config validates: the import registers 'my_loss' before loss.name is checked.
    mine = tiny_config('mlp', seed=1, loss__name='my_loss', **common)
    assert 'my_loss' in losses.LOSSES and 'my_loss' in ganjax.losses.LOSSES

    logits = jnp.array([3.0, -1.0]), jnp.array([-3.0, 0.5])
    d_loss, g_loss, aux = losses.LOSSES['my_loss'](*logits)
    np.testing.assert_allclose([aux['d_real'], aux['d_fake'], g_loss], [1.5, 1.25, 1.25])

    gan = build_gan(mine, VECTOR)
    batch = random_batch(mine, VECTOR)
    solo, metrics = jax.jit(make_train_step(mine, gan))(create_state(mine, gan), batch)
    metrics = jax.device_get(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics['penalty'] > 0
    np.testing.assert_allclose(metrics['d_loss'], metrics['d_real'] + metrics['d_fake'], rtol=1e-6)

    # A population: member 0 the built-in loss, member 1 the registered one by loss_index.
    ns = tiny_config('mlp', seed=0, loss__name='non_saturating', **common)
    pop_gan = build_gan(ns, VECTOR, loss_names=('non_saturating', 'my_loss'))
    pop = state_lib.stack([create_state(c, pop_gan) for c in (ns, mine)])
    assert pop.hparams['loss_index'].tolist() == [0, 1]
    pop, pop_metrics = jax.jit(jax.vmap(make_train_step(ns, pop_gan), in_axes=(0, None)))(
        pop, batch)
    got, want = state_lib.member(jax.device_get(pop), 1), jax.device_get(solo)
    for a, b in zip(jax.tree.leaves(got.g_params), jax.tree.leaves(want.g_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pop_metrics['d_loss'][1], metrics['d_loss'], rtol=1e-5)
    assert abs(float(pop_metrics['d_loss'][0]) - float(metrics['d_loss'])) > 1e-3


def _two_args(real_logits, fake_logits):
    return losses.hinge(real_logits, fake_logits)


def test_registration_refuses_taken_names_bad_signatures_and_bad_outputs():
    with pytest.raises(ConfigError, match=r"register_loss\('hinge'\): the name is taken \(by "
                                          r"ganjax.losses.hinge\).*replace=True"):
        ganjax.register_loss('hinge')(_two_args)
    ganjax.register_loss('twice')(_two_args)
    with pytest.raises(ConfigError, match='the name is taken'):
        ganjax.register_loss('twice')(_two_args)
    ganjax.register_loss('twice', replace=True)(losses.least_squares)
    assert losses.get_loss('twice') is losses.least_squares
    with pytest.raises(ConfigError, match=r"cannot be called as fn\(real_logits, fake_logits\)"):
        ganjax.register_loss('one_arg')(lambda logits: logits)
    with pytest.raises(ConfigError, match='is not callable'):
        ganjax.register_loss('not_fn')(3.0)
    with pytest.raises(ConfigError, match='takes the name first'):
        ganjax.register_loss(_two_args)
    with pytest.raises(ConfigError, match=r"must return \(d_loss, g_loss, aux\).*exactly the keys"
                                          r".*it returned \('float32\[\]', 'float32\[\]', \{\}\)"):
        ganjax.register_loss('no_aux')(lambda r, f: (jnp.mean(r), jnp.mean(f), {}))
    with pytest.raises(ConfigError, match=r'fails on float32 logits of shape \[4\]: TypeError'):
        ganjax.register_loss('raises')(lambda r, f: r @ jnp.ones(3))
    with pytest.raises(ConfigError, match=r"register_penalty\('r1'\): the name is taken"):
        ganjax.register_penalty('r1')(_my_penalty)
    with pytest.raises(ConfigError, match=r'cannot be called as fn\(d_fn, real, fake, rng\)'):
        ganjax.register_penalty('three')(lambda d_fn, real, fake: 0.0)
    with pytest.raises(ConfigError, match=r'must return a float32 scalar.*float32\[4\]'):
        ganjax.register_penalty('per_example')(lambda d_fn, real, fake, rng: d_fn(real))
    # Nothing that failed entered a table.
    assert not {'one_arg', 'not_fn', 'no_aux', 'raises'} & set(losses.LOSSES)
    assert not {'three', 'per_example'} & set(penalties.PENALTIES)
    with pytest.raises(ConfigError, match=r"loss.name='no_aux' is not one of"):
        tiny_config('mlp', loss__name='no_aux')


_MODULE = '''
import ganjax
from ganjax import losses


@ganjax.register_loss({name!r})
def variant(real_logits, fake_logits):
    return losses.least_squares(real_logits, fake_logits)
'''


def test_imports_by_module_name_and_by_path(tmp_path, monkeypatch):
    (tmp_path / 'user_mod_a.py').write_text(_MODULE.format(name='from_module'))
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'b.py').write_text(_MODULE.format(name='from_path'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = tiny_config('mlp', imports=('user_mod_a', 'sub/b.py'), loss__name='from_path')
    assert {'from_module', 'from_path'} <= set(losses.LOSSES)
    # Importing again (a resume in the same process, a second validation) registers nothing
    # twice, also when the same file is named by its path.
    config.imports = ('user_mod_a', 'sub/b.py', str(tmp_path / 'user_mod_a.py'))
    config_lib.validate(config)
    # The config's JSON record keeps the list.
    assert config_lib.from_json(config_lib.to_json(config)).imports == config.imports

    config.imports = ('user_mod_missing',)
    with pytest.raises(ConfigError, match=r"imports: cannot import 'user_mod_missing': "
                                          r"ModuleNotFoundError: No module named"):
        config_lib.validate(config)
    config.imports = ('sub/none.py',)
    with pytest.raises(ConfigError, match=r"imports: cannot import 'sub/none.py': "
                                          r'FileNotFoundError: no such file .*none.py'):
        config_lib.validate(config)
    (tmp_path / 'sub' / 'broken.py').write_text('import ganjax\n\nx = 1 / 0\n')
    config.imports = ('sub/broken.py',)
    with pytest.raises(ConfigError, match=r"cannot import 'sub/broken.py', line 3: `x = 1 / 0`: "
                                          r'ZeroDivisionError'):
        config_lib.validate(config)
    assert not [m for m in sys.modules if m.startswith('_ganjax_import_broken')]
    # A module whose registration fails says so, with the module's name.
    (tmp_path / 'user_mod_dup.py').write_text(_MODULE.format(name='hinge'))
    config.imports = ('user_mod_dup',)
    with pytest.raises(ConfigError, match=r"cannot import 'user_mod_dup': ConfigError: "
                                          r"register_loss\('hinge'\): the name is taken"):
        config_lib.validate(config)


def test_import_ganjax_stays_free_of_jax():
    import subprocess  # noqa: PLC0415

    code = ('import sys, ganjax; assert "jax" not in sys.modules; '
            'f = ganjax.register_loss; assert "jax" in sys.modules; '
            'from ganjax import register_penalty; print(f.__module__, register_penalty.__module__)')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), check=True, timeout=120)
    assert out.stdout.split() == ['ganjax.losses', 'ganjax.penalties']


def test_a_run_with_a_registered_loss_is_restored_from_its_workdir_alone(tmp_path):
    from ganjax import train as train_lib  # noqa: PLC0415

    path = _readme_module(tmp_path)
    config = tiny_config('mlp', imports=(path,), loss__name='my_loss', data__name='ring8',
                         train__num_steps=2, train__checkpoint_every=2, train__log_every=1,
                         train__sample_every=100, eval__best_metric='')
    workdir = str(tmp_path / 'run')
    train_lib.train_and_evaluate(config, workdir)
    # A new process: the tables hold the built-ins only, the module is not imported.
    del losses.LOSSES['my_loss']
    for name in [m for m in sys.modules if m.startswith('_ganjax_import_my_losses')]:
        del sys.modules[name]
    saved, gan, state = run_dir.load_run(workdir)
    assert saved.imports == (path,) and gan.loss_names == ('my_loss',)
    assert int(state.step) == 2 and 'my_loss' in losses.LOSSES
