"""The run directory (WORKDIR) of one training run, and how it stays consistent with the last
checkpoint. `ganjax.train` writes it; `ganjax.evaluate` and `ganjax sample` read it.

    WORKDIR/config.json      the config the run was started with
    WORKDIR/run_info.json    data shape, dataset description, class names and the data's
                             scaling (used by `ganjax sample`)
    WORKDIR/checkpoints/     orbax checkpoints (the last `train.keep_checkpoints`)
    WORKDIR/metrics.jsonl    one JSON record per `train.log_every` steps
    WORKDIR/tensorboard/     TensorBoard event files (scalars and sample grids)
    WORKDIR/samples/         PNG grids of EMA-generator samples from fixed noise
    WORKDIR/losses.png       loss curves, written at the end of training
    WORKDIR/eval.png         evaluation metrics over training (when `eval.every` > 0)
    WORKDIR/eval/            history.jsonl of the evaluations every `eval.every` steps (and the
                             JSON reports of `ganjax eval`)
    WORKDIR/best/            the checkpoint with the best `eval.best_metric` so far, and best.json

The checkpoint is the truth: a run killed at any moment (kill -9) resumes from its last complete
checkpoint, and `trim_to_checkpoint` first cuts every other file back to that step, so that the
resumed run writes the same files as one that never stopped. A workdir whose run never completed
a checkpoint holds no run: its files are cleared and its config.json does not bind a new start.
"""

import copy
import glob
import json
import os
import shutil
import signal
from typing import Any, Callable

import jax
from ml_collections import ConfigDict

from ganjax import checkpoint, compose, config as config_lib, data, summaries
from ganjax.errors import ConfigError
from ganjax.metrics.goals import is_better
from ganjax.optim import schedule_steps
from ganjax.state import GANState
from ganjax.train_step import build_gan, create_state

# Keys that may change when a run is resumed: how long it runs and how it reports, not what it
# trains.
RESUMABLE_CHANGES = frozenset({
    'train.num_steps', 'train.log_every', 'train.sample_every', 'train.checkpoint_every',
    'train.keep_checkpoints', 'train.progress', 'train.compilation_cache', 'data.prefetch',
    'data.pipeline', 'data.workers', 'data.threads',
    # How the same computation is laid out: a run may resume on another number of devices.
    'train.steps_per_call', 'data.on_device', 'data.on_device_max_mb', 'parallel.strategy',
    'parallel.num_devices', 'parallel.fsdp', 'parallel.fsdp_min_size', 'parallel.distributed',
    'parallel.coordinator_address', 'parallel.num_processes', 'parallel.process_id',
    # Measuring does not change what is trained. (A new eval.best_metric or feature set restarts
    # the best-checkpoint record: values of different metrics are not comparable.)
    'eval.every', 'eval.num_samples', 'eval.batch_size', 'eval.features', 'eval.features_dir',
    'eval.inception_weights', 'eval.best_metric',
    # DNA: which motifs the sequence metrics scan for, how sample files decode bases.
    'data.seq_motifs', 'data.seq_decode',
    # Where the run's own losses and penalties are defined (a moved module): the run records
    # the names they register, which must stay the same.
    'imports',
})

#: Environment variable of the crash tests: 'POINT:STEP' (or 'POINT:STEP:TERM') makes the process
#: kill itself with SIGKILL (or SIGTERM) when training passes `kill_point(POINT, STEP)`.
KILL_AT_ENV = 'GANJAX_TEST_KILL_AT'


def write_json_atomic(path: str, obj: Any) -> None:
    """Writes JSON (or a JSON string) so that a reader sees the old file or the new, never half.

    Args:
      path: the file.
      obj: a JSON-serializable object, or text written as is.
    """
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj, indent=2))
    os.replace(tmp, path)


def checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the checkpoints in WORKDIR/checkpoints (a sweep's: WORKDIR/groups/*/checkpoints),
    read from the folder names.

    Orbax renames a checkpoint's folder to its step only once it is complete, so this needs no
    orbax (and no jax) to tell whether a run has started.
    """
    folders = [os.path.join(workdir, 'checkpoints')]
    folders += sorted(glob.glob(os.path.join(workdir, 'groups', '*', 'checkpoints')))
    steps = set()
    for folder in folders:
        if os.path.isdir(folder):
            steps.update(int(name) for name in os.listdir(folder) if name.isdigit())
    return sorted(steps)


def reconcile_config(config: ConfigDict, workdir: str, write: bool = True) -> None:
    """Checks a config against the one a workdir's run was started with, and records it.

    A workdir without a checkpoint holds no run (it failed or was killed before its first
    checkpoint), so its config.json does not bind: the retry may change anything.

    Args:
      config: the config asked for now.
      workdir: the run's folder.
      write: (re)write its config.json with `config`.

    Raises:
      ConfigError: if the workdir holds a run whose config differs in a key outside
        `RESUMABLE_CHANGES`, or its config.json cannot be read.
    """
    path = os.path.join(workdir, 'config.json')
    if os.path.exists(path) and checkpoint_steps(workdir):
        saved = load_workdir_config(workdir)
        changed = {k: v for k, v in config_lib.diff(saved, config).items()
                   if k not in RESUMABLE_CHANGES}
        if changed:
            lines = ', '.join(f'{k}: {a!r} in the run, {b!r} now' for k, (a, b) in changed.items())
            raise ConfigError(
                f'{workdir} holds a run started with another config ({lines}). Resume it with '
                f'`ganjax train --workdir {workdir}` alone, or start a new run in a new --workdir.')
    if write:
        write_json_atomic(path, config_lib.to_json(config))


def load_workdir_config(workdir: str) -> ConfigDict:
    """The config saved in a run's workdir.

    Args:
      workdir: the run's folder.

    Returns:
      The config.

    Raises:
      ConfigError: if the workdir holds no run or its config.json cannot be read.
    """
    path = os.path.join(workdir, 'config.json')
    if not os.path.isfile(path):
        raise ConfigError(f'{workdir} holds no ganjax run (no config.json); start one with '
                          f'`ganjax train --config CONFIG.py --workdir {workdir}`')
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ConfigError(f'{path} is not text; it is not a config saved by ganjax') from None
    return config_lib.from_json(text, where=path)


def fix_schedule_steps(config: ConfigDict, workdir: str) -> ConfigDict:
    """Fixes `optim.schedule_steps` when it is 0: the saved run's value on a resume, else the
    run's `train.num_steps` at its start, so that a resume with another `train.num_steps` keeps the
    learning-rate schedule (the value is stored in the run's config.json).

    A workdir without a checkpoint holds no run, so its config.json fixes nothing.

    Args:
      config: the config asked for (not changed).
      workdir: the run's folder.

    Returns:
      A copy of `config` with `optim.schedule_steps` > 0.
    """
    config = copy.deepcopy(config)
    if config.optim.schedule_steps > 0:
        return config
    saved = None
    if checkpoint_steps(workdir) and os.path.isfile(os.path.join(workdir, 'config.json')):
        saved = load_workdir_config(workdir).optim.schedule_steps
    config.optim.schedule_steps = saved if saved else schedule_steps(config)
    return config


def trim_to_checkpoint(workdir: str, step: int | None) -> None:
    """Cuts the run's files back to the checkpoint that training (re)starts from.

    Metrics and evaluation records after `step`, sample grids of later steps and the temporary
    files of interrupted writes are removed. Without a checkpoint (step None) the run never
    started, and every file an earlier attempt wrote (records, samples, plots, best/) goes. A
    best/ checkpoint from after `step` stays: the resumed run evaluates the same states to the
    same values, so it would keep the same one.

    Args:
      workdir: the run's folder.
      step: the restored checkpoint's step, or None for a new run.
    """
    last = 0 if step is None else step
    summaries.truncate_jsonl(os.path.join(workdir, 'metrics.jsonl'), last)
    summaries.truncate_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'), last)
    for path in glob.glob(os.path.join(workdir, 'samples', 'step_*.png')):
        name = os.path.basename(path)[len('step_'):-len('.png')]
        if name.isdigit() and int(name) > last:
            os.remove(path)
    # Half-written files of the atomic writers (a kill before their rename).
    for folder in ('', 'samples', 'eval', 'best'):
        for pattern in ('*.tmp', '*.tmp.png'):
            for path in glob.glob(os.path.join(workdir, folder, pattern)):
                os.remove(path)
    if step is None:
        for name in ('losses.png', 'eval.png'):
            if os.path.exists(os.path.join(workdir, name)):
                os.remove(os.path.join(workdir, name))
        shutil.rmtree(os.path.join(workdir, 'best'), ignore_errors=True)


def kill_point(name: str, step: int, before: Callable[[], None] | None = None) -> None:
    """Kills this process at a named point when $GANJAX_TEST_KILL_AT asks for it (crash tests).

    Args:
      name: the point, e.g. 'after_checkpoint'.
      step: the training step at this point.
      before: called first when the point is armed (e.g. waiting for a checkpoint to commit).
    """
    spec = os.environ.get(KILL_AT_ENV)
    if not spec:
        return
    point, _, rest = spec.partition(':')
    at, _, sig = rest.partition(':')
    if point != name or int(at) != step:
        return
    if before is not None:
        before()
    os.kill(os.getpid(), getattr(signal, 'SIG' + (sig or 'KILL')))


class BestCheckpoint:
    """WORKDIR/best: the checkpoint with the best value of one evaluation metric so far.

    The record ({metric, value, step, metrics}) is committed inside the checkpoint (orbax renames
    a complete checkpoint into place in one step), so checkpoint and record change together;
    best.json is a copy of it for people and tools, rewritten from the checkpoint when a kill left
    it behind.
    """

    def __init__(self, workdir: str, metric: str, write: bool = True,
                 log: Callable[[str], None] = print):
        """Opens WORKDIR/best (removing the temporary folders of an interrupted write).

        Args:
          workdir: the run's folder.
          metric: the metric to minimize or maximize (a key of `METRIC_GOALS`).
          write: this process writes best.json (the chief).
          log: where to say that the record starts over for another metric.
        """
        self.metric = metric
        self.directory = os.path.join(workdir, 'best')
        self.path = os.path.join(self.directory, 'best.json')
        self._write = write
        self.value = None
        self._ckpt = checkpoint.Checkpointer(self.directory, max_to_keep=1)
        record = self._committed_record()
        if record is not None and self._write and read_best_record(workdir) != record:
            write_json_atomic(self.path, record)
        if record is not None:
            if record.get('metric') == metric:
                self.value = record['value']
            else:
                log(f"best checkpoint so far was chosen by {record.get('metric')}; now choosing "
                    f'by {metric}, the record starts over')

    def _committed_record(self) -> dict | None:
        step = self._ckpt.latest_step()
        if step is None:
            return None
        record = self._ckpt.read_extra(step).get('best')
        if record is None:
            # Written before records went into the checkpoint: best.json is the record.
            if not os.path.exists(self.path):
                return None
            with open(self.path, encoding='utf-8') as f:
                record = json.load(f)
        return record

    def offer(self, step: int, values: dict[str, float], state: GANState,
              data_position: int) -> bool:
        """Keeps `state` if values[metric] improves on the best so far.

        Args:
          step: the state's step.
          values: the evaluation's metrics.
          state: the canonical GANState evaluated.
          data_position: the data position at that step.

        Returns:
          Whether it was kept.
        """
        value = values[self.metric]
        if not is_better(self.metric, value, self.value):
            return False
        record = {'metric': self.metric, 'value': value, 'step': step,
                  'metrics': {k: float(v) for k, v in values.items()}}
        self._ckpt.save(step, state, data_position, extra={'best': record})
        self._ckpt.wait()
        self.value = value
        kill_point('during_best', step)
        if self._write:
            write_json_atomic(self.path, record)
        return True

    def close(self) -> None:
        """Finishes pending writes."""
        self._ckpt.close()


def read_best_record(workdir: str) -> dict | None:
    """WORKDIR/best/best.json, or None if there is none (or it is unreadable)."""
    path = os.path.join(workdir, 'best', 'best.json')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def load_scaling(workdir: str) -> data.Scaling:
    """The data scaling a run recorded in run_info.json (samples -> data units: `to_data`).

    A run recorded before scalings were stored gets the one its data declares now.

    Args:
      workdir: the run's folder.

    Returns:
      The run's `data.Scaling`.
    """
    with open(os.path.join(workdir, 'run_info.json'), encoding='utf-8') as f:
        record = json.load(f).get('scaling')
    if record is None:
        return data.build_source(load_workdir_config(workdir).data, 'train').scaling
    return data.Scaling.from_json(record)


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """Names for classes that have none: their indices, zero-padded so that they sort in class
    order ('00'-'11' for 12 classes; '0'-'9' for 10, MNIST's digits)."""
    width = len(str(max(num_classes - 1, 0)))
    return tuple(f'{k:0{width}d}' for k in range(num_classes))


def source_class_names(source: data.Source) -> tuple[str, ...]:
    """A source's class names (its `class_names` attribute, where it has one), else
    `default_class_names`; () for unlabelled data."""
    names = tuple(str(n) for n in getattr(source, 'class_names', ()) or ())
    return names if len(names) == source.num_classes else default_class_names(source.num_classes)


def load_class_names(workdir: str) -> tuple[str, ...]:
    """The names of a run's data classes, from its run_info.json (label k is names[k]).

    Args:
      workdir: the run's folder.

    Returns:
      The names recorded with the run, or `default_class_names` for runs recorded before names
      were; () for unlabelled data.
    """
    with open(os.path.join(workdir, 'run_info.json'), encoding='utf-8') as f:
        info = json.load(f)
    num_classes = int(info.get('num_classes', 0))
    names = tuple(info.get('class_names') or ())
    return names if len(names) == num_classes else default_class_names(num_classes)


def load_run_classes(workdir: str) -> tuple[int, tuple[str, ...]]:
    """The classes a run's generator is conditioned on, from its config.json and run_info.json.

    Args:
      workdir: the run's folder.

    Returns:
      (number of classes, 0 for an unconditional generator (`model.conditional` unset); their
      names, as `load_class_names`).
    """
    if not load_workdir_config(workdir).model.conditional:
        return 0, ()
    names = load_class_names(workdir)
    return len(names), names


#: The record of a sweep member in DIR/members/NNN (`ganjax.population`).
MEMBER_FILE = 'member.json'


def read_member_record(workdir: str) -> dict | None:
    """A sweep member folder's member.json (its variant, setting, seed, step, diverged_at and
    program), or None for an ordinary run."""
    path = os.path.join(workdir, MEMBER_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _member_checkpointer(workdir: str, record: dict) -> checkpoint.Checkpointer:
    folder = os.path.normpath(os.path.join(workdir, record['program']['checkpoints']))
    if not os.path.isdir(folder):
        raise ConfigError(f'{workdir} is a sweep member whose program has no checkpoint yet '
                          f'({folder})')
    return checkpoint.Checkpointer(folder, read_only=True)


def _restore_member(workdir: str, record: dict, config: ConfigDict, gan, step: int | None,
                    log) -> GANState:
    """A sweep member's state, from its program's stacked checkpoint, as its own run's state."""
    program = record['program']
    one = compose.population_member_state(config, gan)
    template = jax.eval_shape(lambda: jax.tree.map(
        lambda x: jax.numpy.stack([x] * int(program['size'])), one))
    ckpt = _member_checkpointer(workdir, record)
    try:
        steps = ckpt.all_steps()
        if step is not None and step not in steps:
            raise ConfigError(f'{workdir}: its program has no checkpoint of step {step}; it has '
                              f'steps {", ".join(map(str, steps))}')
        try:
            stacked, _ = ckpt.restore(template, step, warn=log)
        except FileNotFoundError as e:
            raise ConfigError(f'{workdir}: {e}') from None
    finally:
        ckpt.close()
    return compose.solo_state(jax.device_get(stacked), int(program['position']))


def member_log_window(workdir: str) -> list[dict]:
    """The metrics a sweep member had not yet logged at its program's latest checkpoint."""
    record = read_member_record(workdir)
    ckpt = _member_checkpointer(workdir, record)
    try:
        step = ckpt.latest_step()
        windows = ckpt.read_extra(step).get('log_windows', []) if step is not None else []
    finally:
        ckpt.close()
    position = int(record['program']['position'])
    return list(windows[position]) if position < len(windows) else []


def load_run(workdir: str, step: int | None = None, best: bool = False,
             log: Callable[[str], None] | None = None):
    """Restores a run's GANDef and GANState (for sampling and evaluation).

    A sweep member's folder (DIR/members/NNN) works too: its state comes from its program's
    stacked checkpoint, as its own run's state.

    Args:
      workdir: the run's folder.
      step: checkpoint step; the latest readable one if None.
      best: restore the checkpoint kept in WORKDIR/best (by `eval.best_metric`) instead.
      log: where to warn about an unreadable latest checkpoint that was skipped.

    Returns:
      (config, gan, state).

    Raises:
      ConfigError: if the workdir holds no run, no checkpoint, or not the step asked for, or a
        module the run imports (`imports`) cannot be imported.
    """
    config = load_workdir_config(workdir)
    # The run's own losses and penalties (`imports`) before build_gan looks them up. (Training
    # imports them in config.validate.)
    config_lib.import_modules(config)
    info_path = os.path.join(workdir, 'run_info.json')
    with open(info_path, encoding='utf-8') as f:
        info = json.load(f)
    data_shape = tuple(info['data_shape'])
    gan = build_gan(config, data_shape, int(info.get('num_classes', 0)),
                    scaling=load_scaling(workdir))
    record = read_member_record(workdir)
    if record is not None and not best:
        return config, gan, _restore_member(workdir, record, config, gan, step, log)
    folder = os.path.join(workdir, 'best' if best else 'checkpoints')
    if not os.path.isdir(folder):
        if not best:
            raise ConfigError(f'{workdir} has no checkpoint yet')
        raise ConfigError(f'{workdir} has no best checkpoint (it is kept when a run evaluates '
                          'during training: eval.every > 0 and eval.best_metric set)')
    ckpt = checkpoint.Checkpointer(folder, read_only=True)
    try:
        steps = ckpt.all_steps()
        if not steps:
            raise ConfigError(f'{workdir} has no {"best " if best else ""}checkpoint yet')
        if step is not None and step not in steps:
            raise ConfigError(f'{workdir} has no checkpoint of step {step}; it has steps '
                              f'{", ".join(map(str, steps))}')
        template = jax.eval_shape(lambda: create_state(config, gan))
        try:
            state, _ = ckpt.restore(template, step, warn=log)
        except FileNotFoundError as e:
            raise ConfigError(f'{workdir}: {e}') from None
    finally:
        ckpt.close()
    return config, gan, state
