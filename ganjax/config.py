"""Loading, overriding and checking run configs (ml_collections ConfigDicts in Python files)."""

import ast
import hashlib
import importlib
import importlib.util
import json
import math
import os
import re
import sys
import traceback
from typing import Any

from ml_collections import ConfigDict

from ganjax import default_config as default_config_lib
from ganjax.errors import ConfigError, closest_hint

# Choices of the string keys that no module holds a table for.
_CHOICES = {
    'precision': ('float32', 'bf16'),
    'model.param_dtype': ('float32', 'bfloat16'),
    'optim.schedule': ('constant', 'linear', 'cosine'),
    'data.on_device': ('auto', 'always', 'never'),
    'data.values': ('auto', 'counts', 'log1p'),
    'data.preprocess': ('none', 'library', 'log1p_library'),
    'data.bad_rows': ('error', 'drop'),
    'train.fake_labels': ('uniform', 'data'),
    'data.pipeline': ('thread', 'grain'),
    'parallel.strategy': ('jit', 'pmap'),
    'parallel.distributed': ('auto', 'on', 'off'),
    'eval.features': ('auto', 'raw', 'classifier', 'inception'),
    # DNA FASTA data (ganjax/data/fasta.py) and its sample files.
    'data.seq_long': ('error', 'random_crop', 'centre_crop', 'skip'),
    'data.seq_short': ('error', 'pad', 'skip'),
    'data.seq_pad': ('A', 'C', 'G', 'T', 'N'),
    'data.seq_ambiguous': ('skip', 'uniform'),
    'data.seq_decode': ('argmax', 'sample'),
    'model.seq_output': ('softmax', 'gumbel_softmax'),
}


def default_config() -> ConfigDict:
    """The config with every key and its default (`ganjax/default_config.py`).

    Returns:
      A fresh ConfigDict.
    """
    return default_config_lib.get_config()


def load_config_file(path: str, check: bool = True) -> ConfigDict:
    """Imports a config file and calls its `get_config()`.

    The file's folder and the one above it go on sys.path, so a config file can import its
    neighbours (`from configs import mlp_ring8`, as some in this repository do); the defaults
    need no path: `from ganjax import default_config`.

    Args:
      path: path of a Python file defining `get_config() -> ConfigDict`.
      check: check the result against the default config (unknown keys, wrong types).

    Returns:
      The config, unlocked.

    Raises:
      ConfigError: for a missing file, a file without `get_config`, or unknown keys.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f'config file {path} does not exist')
    for extra in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    name = '_ganjax_config_' + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a config is user code: report which file failed and why
        raise ConfigError(f'config file {path}{_where_in(e, path)} failed to load: '
                          f'{_describe(e)}') from e
    if not hasattr(module, 'get_config'):
        raise ConfigError(f'config file {path} defines no get_config() function')
    try:
        config = module.get_config()
    except Exception as e:  # e.g. `config.data.batch_size = "64"`: ConfigDict refuses the type
        raise ConfigError(f'config file {path}{_where_in(e, path) or " (get_config())"}: '
                          f'{_describe(e)}') from e
    if not isinstance(config, ConfigDict):
        raise ConfigError(f'get_config() in {path} returned {type(config).__name__}, '
                          'not an ml_collections.ConfigDict')
    if check:
        check_against_default(config, where=path)
    return config


def _where_in(error: BaseException, path: str) -> str:
    """', line N: `code`' of the innermost traceback frame inside `path`, or ''."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename) == path]
    if not frames:
        return ''
    frame = frames[-1]
    return f', line {frame.lineno}' + (f': `{frame.line}`' if frame.line else '')


# ml_collections' message for a value of the wrong type assigned to an existing key.
_TYPE_MISMATCH = re.compile(r"Could not override field '(?P<key>[^']+)'.* is of original type "
                            r"<class '(?P<value>\w+)'> and cannot be casted to type "
                            r"<class '(?P<field>\w+)'>")


def _describe(error: BaseException) -> str:
    """One line saying what went wrong in user config code."""
    match = _TYPE_MISMATCH.search(str(error))
    if match:
        return f"{match['key']} takes a value of type {match['field']}, not {match['value']}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else ''
    return f'{type(error).__name__}: {first}' if first else type(error).__name__


def flatten(config: ConfigDict, prefix: str = '') -> dict[str, Any]:
    """The config as {dotted key: value} (sections flattened)."""
    out = {}
    for key, value in config.items():
        name = prefix + key
        if isinstance(value, ConfigDict):
            out.update(flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def check_against_default(config: ConfigDict, where: str = 'config') -> None:
    """Raises ConfigError if `config` has a key the default lacks or a value of another type.

    Args:
      config: the config to check.
      where: what to name in the message (a file, 'command line').

    Raises:
      ConfigError: naming every offending key.
    """
    defaults = flatten(default_config())
    problems = []
    for key, value in flatten(config).items():
        if key not in defaults:
            problems.append(f'unknown key {key!r}{closest_hint(key, defaults)}')
        elif not _same_type(defaults[key], value):
            problems.append(f'{key}={value!r} is a {type(value).__name__}; '
                            f'expected a {type(defaults[key]).__name__}')
    if problems:
        raise ConfigError(f'{where}: ' + '; '.join(problems))


def parse_value(key: str, text: str, current: Any, where: str = '') -> Any:
    """Parses the text of a value for `key` as the type of its `current` value.

    Args:
      key: the dotted key.
      text: the value's text.
      current: the key's present value (its type decides).
      where: what to name in an error ('' = the command-line override --config.KEY=TEXT).

    Returns:
      The value: bool, int, float, tuple or str.

    Raises:
      ConfigError: if the text does not parse as that type.
    """
    where = where or f'--config.{key}={text!r}'
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ('true', '1', 'yes'):
            return True
        if lowered in ('false', '0', 'no'):
            return False
        raise ConfigError(f'{where}: expected a bool (true or false)')
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f'{where}: expected an int') from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f'{where}: expected a float') from None
    if isinstance(current, (tuple, list)):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ConfigError(f'{where}: expected a tuple like (1, 2)') from None
        if not isinstance(value, (tuple, list)):
            value = (value,)
        return tuple(value)
    return text


def parse_override_args(args: list[str]) -> dict[str, str]:
    """Collects `--config.KEY=VALUE` (or `--config.KEY VALUE`) arguments.

    Args:
      args: command-line arguments left over by argparse.

    Returns:
      dotted key -> value text, in order.

    Raises:
      ConfigError: for an argument that is not a config override, or one without a value.
    """
    overrides = {}
    args = list(args)
    while args:
        arg = args.pop(0)
        if not arg.startswith('--config.'):
            raise ConfigError(f'unrecognized argument {arg!r}')
        key = arg[len('--config.'):]
        if '=' in key:
            key, value = key.split('=', 1)
        elif args:
            value = args.pop(0)
        else:
            raise ConfigError(f'{arg} needs a value')
        overrides[key] = value
    return overrides


def apply_overrides(config: ConfigDict, overrides: dict[str, str]) -> ConfigDict:
    """Applies command-line overrides such as {'optim.g_lr': '1e-4'} in place.

    The value's text is parsed as the type the key already has.

    Args:
      config: the config to change.
      overrides: dotted key -> value text.

    Returns:
      The same config.

    Raises:
      ConfigError: for an unknown key or a value that does not parse as the key's type.
    """
    flat = flatten(config)
    for key, text in overrides.items():
        if key not in flat:
            raise ConfigError(f'--config.{key}: unknown config key{closest_hint(key, flat)}')
        node = config
        *parents, leaf = key.split('.')
        for p in parents:
            node = node[p]
        node[leaf] = parse_value(key, text, flat[key])
    return config


# Numeric keys and their ranges (config.validate).
_POSITIVE = ('model.latent_dim', 'model.g_features', 'model.d_features', 'model.mlp_layers',
             'data.batch_size', 'train.num_steps', 'train.n_critic', 'train.log_every',
             'train.sample_every', 'train.checkpoint_every', 'train.keep_checkpoints',
             'train.num_samples', 'penalty.interval', 'train.steps_per_call', 'parallel.fsdp',
             'data.on_device_max_mb', 'eval.num_samples', 'eval.batch_size', 'optim.eps',
             'data.threads', 'data.crops_per_image', 'augment.ada_interval',
             'augment.ada_kimg', 'sweep.member_devices', 'model.res_blocks',
             'model.kernel_size', 'model.res_scale', 'model.temperature')
_NON_NEGATIVE = ('optim.g_lr', 'optim.d_lr', 'optim.optimism', 'loss.weight_clip',
                 'penalty.weight', 'optim.grad_clip_norm', 'optim.weight_decay', 'data.prefetch',
                 'data.image_size', 'data.channels', 'parallel.num_devices',
                 'parallel.num_processes', 'parallel.fsdp_min_size', 'eval.every',
                 'optim.schedule_steps', 'data.workers', 'loss.class_weight',
                 'data.num_labels', 'data.label_seed', 'data.labelled_batch_size', 'data.crop_size',
                 'data.train_examples', 'data.num_genes', 'sweep.num_random',
                 'sweep.members_per_pass', 'data.seq_length')
# [0, 1): decay rates, where 1 would freeze an average and more would make it diverge.
_UNIT_INTERVAL = {
    'optim.b1': "Adam's beta1, SGD's momentum",
    'optim.b2': "Adam's beta2, RMSProp's decay",
    'ema.decay': 'EMA of G',
    'data.eval_fraction': 'share held out',
    'augment.ada_target': "ADA's target of E[sign(D(real))]; 0 = fixed p",
}


def _is_path(entry: str) -> bool:
    return entry.endswith('.py') or os.sep in entry or '/' in entry


def _import_file(path: str) -> None:
    """Executes a .py file once as a module (a second call, or a file already imported under
    another name, does nothing: registering its losses twice would be an error)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no such file {path}')
    for module in list(sys.modules.values()):
        file = getattr(module, '__file__', None)
        if file and os.path.abspath(file) == path:
            return
    stem = re.sub(r'\W', '_', os.path.splitext(os.path.basename(path))[0])
    name = f'_ganjax_import_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as `import` does: the module may look itself up while it runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def import_modules(config: ConfigDict) -> None:
    """Imports the modules that `config.imports` names, before anything reads the tables.

    A user's own losses and penalties enter `ganjax.losses.LOSSES` and
    `ganjax.penalties.PENALTIES` when their module runs (`ganjax.register_loss`,
    `ganjax.register_penalty`). The run's config.json lists the modules, so a run that uses them
    is resumed, sampled, evaluated and exported from its workdir alone: `validate` (training,
    resuming) and `ganjax.run_dir.load_run` (sampling, evaluating) call this. Each module is
    imported once per process.

    Args:
      config: a config; `imports` holds module names (importable from sys.path, e.g. installed or
        on PYTHONPATH) or paths of .py files (relative ones from the current directory).

    Raises:
      ConfigError: naming the module and its import error, for the first that cannot be imported.
    """
    entries = config.get('imports', ())
    if isinstance(entries, str):
        entries = (entries,)
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f'imports: {entry!r} is not a module name or a .py file path')
        try:
            if _is_path(entry):
                _import_file(entry)
            else:
                importlib.import_module(entry)
        except Exception as e:  # user code: say which module failed and why, in one line
            where = _where_in(e, os.path.abspath(entry)) if _is_path(entry) else ''
            raise ConfigError(f'imports: cannot import {entry!r}{where}: {_describe(e)}') from e


def validate(config: ConfigDict) -> None:
    """Checks names against their tables and numbers against their ranges.

    The modules in `config.imports` are imported first (`import_modules`), so that the losses
    and penalties they register are among the names allowed.

    Args:
      config: a full config.

    Raises:
      ConfigError: naming the key, the value and what is allowed.
    """
    import_modules(config)
    # Imported here, not at the top: the tables pull in jax (seconds), and the CLI loads and
    # checks a config file (this module) before it pays for that, so a bad file fails at once.
    from ganjax import augment, data, dynamics, losses, models, optim, penalties  # noqa: PLC0415
    from ganjax.data import image_folder  # noqa: PLC0415
    from ganjax.metrics.goals import METRIC_GOALS  # noqa: PLC0415
    from ganjax.models import dcgan, layers  # noqa: PLC0415

    tables = {
        'model.arch': models.ARCHITECTURES,
        'model.upsample': layers.UPSAMPLE,
        'model.downsample': dcgan.DOWNSAMPLE,
        'model.g_norm': layers.NORMS,
        'model.d_norm': layers.NORMS,
        'model.output_activation': layers.OUTPUT_ACTIVATIONS,
        'data.name': data.DATASETS,
        'data.normalize': image_folder.NORMALIZE,
        'data.crop_mode': image_folder.CROP_MODES,
        'loss.name': losses.LOSSES,
        'penalty.name': penalties.PENALTIES,
        'optim.name': optim.OPTIMIZERS,
        'train.updates': dynamics.UPDATES,
    }
    flat = flatten(config)
    choices = {**{k: tuple(sorted(v)) for k, v in tables.items()}, **_CHOICES}
    for key, allowed in choices.items():
        if flat[key] not in allowed:
            raise ConfigError(f'{key}={flat[key]!r} is not one of {list(allowed)}'
                              f'{closest_hint(str(flat[key]), allowed)}')
    for key, value in flat.items():
        # A NaN passes every comparison below (nan < 0 is False), and an infinite rate or weight
        # is never meant: refuse both first.
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f'{key}={value} is not a finite number')
    for key in _POSITIVE:
        if flat[key] <= 0:
            raise ConfigError(f'{key} must be positive, got {flat[key]}')
    for key in _NON_NEGATIVE:
        if flat[key] < 0:
            raise ConfigError(f'{key} must be >= 0, got {flat[key]}')
    for key, meaning in _UNIT_INTERVAL.items():
        if not 0.0 <= flat[key] < 1.0:
            raise ConfigError(f'{key} must be in [0, 1) ({meaning}), got {flat[key]}')
    image_folder.options(config.data)  # data.percentiles: (low, high) in [0, 100]
    if not 0.0 <= flat['augment.p'] <= 1.0:
        raise ConfigError(f"augment.p must be in [0, 1] (a probability), got {flat['augment.p']}")
    augment.parse_policy(flat['augment.policy'])
    dynamics.check_updates(flat['train.updates'], flat['train.n_critic'])
    if flat['parallel.process_id'] < -1:
        raise ConfigError(f"parallel.process_id must be >= 0, or -1 for the environment's, got "
                          f"{flat['parallel.process_id']}")
    if flat['eval.best_metric'] and flat['eval.best_metric'] not in METRIC_GOALS:
        raise ConfigError(f"eval.best_metric={flat['eval.best_metric']!r} is not one of "
                          f"{sorted(METRIC_GOALS)} (or '' for none)"
                          f"{closest_hint(flat['eval.best_metric'], METRIC_GOALS)}")


def to_json(config: ConfigDict) -> str:
    """Serialises a config to JSON (tuples become lists)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)


def from_json(text: str, where: str = 'saved config') -> ConfigDict:
    """Rebuilds a config saved by `to_json`, restoring tuples where the default has them.

    Args:
      text: JSON text.
      where: what to name in an error message, e.g. the file's path.

    Returns:
      A ConfigDict checked against the default.

    Raises:
      ConfigError: for text that is not JSON of a config: invalid JSON, an unknown key, or a
        value of the wrong type.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f'{where} is not valid JSON ({e.msg} at line {e.lineno}, column '
                          f'{e.colno})') from None
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} holds a JSON {type(raw).__name__}, not a config object')
    config = default_config()

    def fill(node: ConfigDict, values: dict, prefix: str):
        for key, value in values.items():
            name = prefix + key
            if key not in node:
                raise ConfigError(f'{where} has unknown key {name!r}')
            if isinstance(node[key], ConfigDict):
                if not isinstance(value, dict):
                    raise ConfigError(f'{where}: {name} is {value!r}, not a section of keys')
                fill(node[key], value, name + '.')
            else:
                value = tuple(value) if isinstance(value, list) else value
                if not _same_type(node[key], value):
                    raise ConfigError(f'{where}: {name}={value!r} is a {type(value).__name__}; '
                                      f'expected a {type(node[key]).__name__}')
                node[key] = value

    fill(config, raw, '')
    return config


def load_json_file(path: str) -> ConfigDict:
    """Reads a config saved as JSON (a run's WORKDIR/config.json).

    Args:
      path: the JSON file.

    Returns:
      The ConfigDict.

    Raises:
      ConfigError: naming the file when it cannot be read or does not hold a config.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f'cannot read {path}: {getattr(e, "strerror", None) or e}') from None
    return from_json(text, where=path)


def diff(a: ConfigDict, b: ConfigDict) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two configs: key -> (value in a, value in b)."""
    fa, fb = flatten(a), flatten(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
