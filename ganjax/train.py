"""The training loop: data, compiled step, checkpoints, metrics, samples, plots, signals.

`train_and_evaluate(config, workdir)` is a library function (the CLI only parses arguments). A
workdir holds one run:

    WORKDIR/config.json      the config the run was started with
    WORKDIR/run_info.json    data shape, dataset description and the data's scaling (used by
                             `ganjax sample`)
    WORKDIR/checkpoints/     orbax checkpoints (the last `train.keep_checkpoints`)
    WORKDIR/metrics.jsonl    one JSON record per `train.log_every` steps
    WORKDIR/tensorboard/     TensorBoard event files (scalars and sample grids)
    WORKDIR/samples/         PNG grids of EMA-generator samples from fixed noise
    WORKDIR/losses.png       loss curves, written at the end of training
    WORKDIR/eval.png         evaluation metrics over training (when `eval.every` > 0)
    WORKDIR/eval/            history.jsonl of the evaluations every `eval.every` steps (and the
                             JSON reports of `ganjax eval`)
    WORKDIR/best/            the checkpoint with the best `eval.best_metric` so far, and best.json
"""

import copy
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict

from ganjax import checkpoint, compose, config as config_lib, data, images, parallel, summaries
from ganjax.errors import ConfigError, NonFiniteError
from ganjax.optim import schedule_steps
from ganjax.state import GANState
from ganjax.train_step import build_gan, create_state, make_generate_fn, sample_latent

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
})

# Folded into the seed for the fixed noise of the sample grids, so they do not share randomness
# with the training steps.
_SAMPLE_NOISE_SALT = 0x5A4D


def log(message: str) -> None:
    """Prints a line of the run's log to stdout, above the progress bar if one is shown."""
    from tqdm.auto import tqdm
    tqdm.write(f'[ganjax] {message}', file=sys.stdout)
    sys.stdout.flush()


def enable_compilation_cache(enabled: bool = True) -> None:
    """Turns on JAX's persistent compilation cache in $GANJAX_CACHE_DIR or ~/.cache/ganjax/xla.

    A resumed run, a second run of the same config and the test suite then skip XLA compilation.

    Args:
      enabled: do nothing when False.
    """
    if not enabled:
        return
    path = os.environ.get('GANJAX_CACHE_DIR',
                          os.path.join(os.path.expanduser('~'), '.cache', 'ganjax', 'xla'))
    jax.config.update('jax_compilation_cache_dir', path)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj, indent=2))
    os.replace(tmp, path)


def reconcile_config(config: ConfigDict, workdir: str, write: bool = True) -> None:
    """Checks a config against the one a workdir's run was started with, and records it.

    Args:
      config: the config asked for now.
      workdir: the run's folder.
      write: (re)write its config.json with `config`.

    Raises:
      ConfigError: if the workdir holds a run whose config differs in a key outside
        `RESUMABLE_CHANGES`.
    """
    path = os.path.join(workdir, 'config.json')
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            saved = config_lib.from_json(f.read())
        changed = {k: v for k, v in config_lib.diff(saved, config).items()
                   if k not in RESUMABLE_CHANGES}
        if changed:
            lines = ', '.join(f'{k}: {a!r} in the run, {b!r} now' for k, (a, b) in changed.items())
            raise ConfigError(
                f'{workdir} holds a run started with another config ({lines}). Resume it with '
                f'`ganjax train --workdir {workdir}` alone, or start a new run in a new --workdir.')
    if write:
        _write_json_atomic(path, config_lib.to_json(config))


def load_workdir_config(workdir: str) -> ConfigDict:
    """The config saved in a run's workdir.

    Raises:
      ConfigError: if the workdir holds no run.
    """
    path = os.path.join(workdir, 'config.json')
    if not os.path.exists(path):
        raise ConfigError(f'{workdir} holds no ganjax run (no config.json); start one with '
                          f'`ganjax train --config CONFIG.py --workdir {workdir}`')
    with open(path, encoding='utf-8') as f:
        return config_lib.from_json(f.read())


class _StopRequest:
    """Turns SIGTERM and the first Ctrl-C into a request to checkpoint and stop.

    A second Ctrl-C interrupts at once (KeyboardInterrupt).
    """

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


def check_finite(step: int, metrics: dict[str, float]) -> None:
    """Raises NonFiniteError naming the first non-finite metric (losses and gradient norms).

    Args:
      step: the step the metrics come from.
      metrics: host floats.
    """
    for key in sorted(metrics):
        value = metrics[key]
        if not np.isfinite(value):
            what = {'d_grad_norm': "the discriminator's gradient norm (d_grad_norm)",
                    'g_grad_norm': "the generator's gradient norm (g_grad_norm)"}.get(key, key)
            raise NonFiniteError(f'step {step}: {what} is {value}')


class _Trainer:
    """The state of one call of `train_and_evaluate` (kept out of the pure step)."""

    def __init__(self, config: ConfigDict, workdir: str):
        self.config = config
        self.workdir = workdir
        # Data and models first: a missing dataset or an impossible model fails before the
        # workdir is touched.
        self.source = data.build_source(config.data, 'train')
        self.data_shape = tuple(int(d) for d in self.source.data_shape)
        self.gan = build_gan(config, self.data_shape, self.source.num_classes,
                             scaling=self.source.scaling)
        # The device layout: a bad mesh or a batch that does not divide fails here, before any
        # compilation and before the workdir is touched.
        self.par = parallel.Parallel(config)
        self._step_fns = {}
        self.is_chief = jax.process_index() == 0
        self.on_device = _data_on_device(config, self.source)
        self.generate = jax.jit(make_generate_fn(self.gan))
        self.fixed_z = sample_latent(
            jax.random.fold_in(jax.random.PRNGKey(config.seed), _SAMPLE_NOISE_SALT),
            config.train.num_samples, self.gan.latent_dim)
        # A conditional generator's grid cycles through the classes.
        self.fixed_y = (np.arange(config.train.num_samples, dtype=np.int32) %
                        self.gan.num_classes) if self.gan.num_classes else None
        # The evaluator is built before the workdir is touched too: a missing feature classifier
        # or weights file is a config error, not a failure after the first thousand steps.
        self.evaluator, self.best = None, None
        if config.eval.every:
            from ganjax import evaluate  # noqa: PLC0415 (evaluate imports this module)
            self.evaluator = evaluate.Evaluator(
                config, self.gan, config.eval.num_samples, features=config.eval.features,
                features_dir=config.eval.features_dir,
                inception_weights=config.eval.inception_weights,
                batch_size=config.eval.batch_size,
                constrain=self.par.constrain if self.par.strategy == 'jit' else None,
                num_devices=len(self.par.devices))
            if config.eval.best_metric:
                evaluate.check_best_metric(config.eval.best_metric, self.evaluator)
        # 2D data: real points behind every scatter plot of samples, for one scale over the run.
        self.reference_points = None
        if self.data_shape == (2,):
            self.reference_points = self.source.get_batch(
                np.arange(min(512, len(self.source))))['x']
        self.ckpt = None
        self.pending = None  # (first step, device metrics) not yet checked
        self.window: list[dict[str, float]] = []

    def open_workdir(self) -> None:
        """Creates or checks the workdir, records config and run info, opens checkpoints."""
        os.makedirs(self.workdir, exist_ok=True)
        # Every process checks the config; one writes the run's files.
        reconcile_config(self.config, self.workdir, write=self.is_chief)
        if self.is_chief:
            _write_json_atomic(os.path.join(self.workdir, 'run_info.json'), {
                'data_shape': list(self.data_shape), 'dataset': self.source.description,
                'num_classes': int(self.source.num_classes),
                'num_train_examples': len(self.source), 'jax_version': jax.__version__,
                'scaling': self.source.scaling.to_json(),
                'layout': self.par.describe(), 'process_count': jax.process_count(),
                'devices': [str(d) for d in self.par.devices]})
        self.ckpt = checkpoint.Checkpointer(os.path.join(self.workdir, 'checkpoints'),
                                            self.config.train.keep_checkpoints)
        if self.evaluator is not None and self.config.eval.best_metric:
            self.best = _BestCheckpoint(self.workdir, self.config.eval.best_metric,
                                        write=self.is_chief)

    def _check_pending(self) -> None:
        if self.pending is None:
            return
        first, metrics = self.pending
        self.pending = None
        host = self.par.host_metrics(metrics)
        # One value per metric and step; a call of k steps gives arrays of k values.
        for i in range(np.size(next(iter(host.values())))):
            values = {k: float(np.reshape(v, -1)[i]) for k, v in host.items()}
            check_finite(first + i, values)
            self.window.append(values)

    def save_samples(self, state: GANState, writer: summaries.MetricsWriter) -> str:
        """Writes the fixed-noise sample grid of the canonical `state` (the chief writes)."""
        x = np.asarray(jax.device_get(self.generate(state.ema_params, state.g_state,
                                                    self.fixed_z, self.fixed_y)))
        step = int(state.step)
        path = os.path.join(self.workdir, 'samples', f'step_{step:07d}.png')
        if self.is_chief:
            picture = images.samples_figure(x, self.reference_points)
            images.save_png(picture, path)
            writer.write_image(step, 'samples/ema', picture)
        return path

    def step_fn(self, count: int):
        """The compiled step for calls of `count` steps (composed once per count)."""
        if count not in self._step_fns:
            self._step_fns[count] = compose.compile_step(
                self.config, self.gan, self.par, steps_per_call=count, on_device=self.on_device)
        return self._step_fns[count]

    def _batches(self, iterator, count: int, data_on_device):
        """The arguments after the state for `count` steps (one call): the batch dict as the
        source gives it ({'x', 'label', ...}), each array [(count,) n_critic, batch, ...]."""
        n_critic, b = self.config.train.n_critic, self.config.data.batch_size
        if data_on_device is not None:
            idx = np.stack([iterator.next_global_indices().reshape(n_critic, b).astype(np.int32)
                            for _ in range(count)])
            return data_on_device, self.par.put_indices(idx[0] if count == 1 else idx)
        batches = [next(iterator) for _ in range(count)]
        local = {k: np.stack([np.reshape(bt[k], (n_critic, -1) + np.shape(bt[k])[1:])
                              for bt in batches]) for k in batches[0]}
        if count == 1:
            return (self.par.put_batch({k: v[0] for k, v in local.items()}, batch_axis=1),)
        return (self.par.put_batch(local, batch_axis=2),)

    def run(self) -> GANState:
        cfg = self.config
        start = self.ckpt.latest_step()
        if start is not None:
            state, position = self.ckpt.restore(self.par.abstract_state(
                jax.eval_shape(lambda: create_state(cfg, self.gan))))
            log(f'resuming {self.workdir} from step {start} (checkpoint restored)')
        else:
            state = self.par.init_state(lambda: create_state(cfg, self.gan))
            state, position = self.par.canonical_state(state), 0
            log(f'new run in {self.workdir}: {self.source.description}, data shape '
                f'{self.data_shape}, {_count(state.g_params):,} G and {_count(state.d_params):,} '
                'D parameters')
        step = int(state.step)
        num_steps = cfg.train.num_steps
        writer = summaries.MetricsWriter(self.workdir, resume_step=start) if self.is_chief \
            else _NullWriter()
        if step >= num_steps:
            log(f'run already complete at step {step} (train.num_steps={num_steps})')
            self._finish(state, writer, samples=False)
            return state
        log(f'layout: {self.par.describe()}; data '
            + ('on the devices' if self.on_device else 'from the host, prefetched'))

        n_critic, batch_size = cfg.train.n_critic, cfg.data.batch_size
        iterator = data.BatchIterator(
            self.source, batch_size * n_critic, seed=cfg.seed, position=position,
            process_index=jax.process_index(), process_count=jax.process_count(),
            prefetch=0 if self.on_device else cfg.data.prefetch, groups=n_critic,
            **({} if self.on_device or not cfg.data.prefetch else dict(
                pipeline=cfg.data.pipeline, workers=cfg.data.workers, threads=cfg.data.threads)))
        data_on_device = None
        if self.on_device:
            data_on_device = self.par.put_dataset(_read_all(self.source))
        state = self.par.place_state(state)
        k = cfg.train.steps_per_call
        events = (cfg.train.log_every, cfg.train.sample_every, cfg.train.checkpoint_every) + \
            ((cfg.eval.every,) if self.evaluator is not None else ())
        progress = _progress_bar(cfg, step, num_steps)
        interrupted, sampled, evaluated = None, None, None
        try:
            with _StopRequest() as stop:
                # Throughput is measured from the end of the first call, which compiles.
                t_window, steps_window = None, 0
                while step < num_steps and not stop.requested:
                    # k steps per call, or single steps up to the next log, sample or checkpoint.
                    to_event = min([e - step % e for e in events] + [num_steps - step])
                    count = k if to_event >= k else 1
                    step_fn = self.step_fn(count)
                    args = self._batches(iterator, count, data_on_device)
                    if t_window is None:
                        t0 = time.perf_counter()
                        state, metrics = step_fn(state, *args)
                        jax.block_until_ready(state)
                        log(f'first call (compile and run) took {time.perf_counter() - t0:.1f} s')
                        t_window = time.perf_counter()
                    else:
                        state, metrics = step_fn(state, *args)
                        steps_window += count
                    # Checking the previous call's metrics after dispatching this one keeps the
                    # device busy while the host waits for the numbers.
                    self._check_pending()
                    self.pending = (step + 1, metrics)
                    step += count
                    progress.update(count)
                    if step % cfg.train.log_every == 0 or step == num_steps:
                        self._check_pending()
                        elapsed = time.perf_counter() - t_window
                        rate = steps_window / elapsed if steps_window else None
                        self._log_window(step, rate, writer, progress)
                        t_window, steps_window = time.perf_counter(), 0
                    if step % cfg.train.sample_every == 0:
                        self.save_samples(self.par.canonical_state(state), writer)
                        sampled = step
                    if step % cfg.train.checkpoint_every == 0:
                        self._check_pending()
                        self.ckpt.save(step, self.par.canonical_state(state), iterator.position)
                    if self.evaluator is not None and step % cfg.eval.every == 0:
                        self._check_pending()
                        self.run_eval(self.par.canonical_state(state), iterator.position, writer)
                        evaluated = step
                self._check_pending()
                interrupted = stop.signal_name
            state = self.par.canonical_state(state)
            self.ckpt.save(step, state, iterator.position)
            if interrupted:
                log(f'{interrupted}: checkpoint of step {step} written; stopping')
        except NonFiniteError as e:
            writer.close()
            self.ckpt.wait()
            last = self.ckpt.latest_step()
            kept = f'the last good checkpoint (step {last}) is kept' if last is not None else \
                'no checkpoint had been written yet'
            raise NonFiniteError(f'{e}; training stopped, {kept} in {self.ckpt.directory} and '
                                 'nothing after it was saved') from None
        finally:
            progress.close()
            iterator.close()
            self.ckpt.wait()
        if not interrupted:
            # The final state is always measured, so the run's last number is its own.
            if self.evaluator is not None and evaluated != step:
                self.run_eval(state, iterator.position, writer)
            self._finish(state, writer, samples=sampled != step)
        else:
            writer.close()
        return state

    def run_eval(self, state: GANState, data_position: int, writer) -> dict[str, float]:
        """Evaluates the EMA generator of the canonical `state`, logs the metrics, and keeps the
        checkpoint if it is the best so far."""
        t0 = time.perf_counter()
        values = self.evaluator.generator_metrics(state.ema_params, state.g_state)
        step = int(state.step)
        writer.write_eval(step, values)
        line = '  '.join(f'{k} {v:.4g}' for k, v in values.items() if not k.endswith('_std'))
        note = ''
        if self.best is not None and self.best.offer(step, values, state, data_position):
            note = f'  (best {self.best.metric} so far: kept in {self.best.directory})'
        log(f'eval at step {step} ({self.evaluator.num} samples, '
            f'{time.perf_counter() - t0:.1f} s): {line}{note}')
        return values

    def _log_window(self, step, rate, writer, progress):
        if not self.window:
            return
        means = {k: float(np.mean([m[k] for m in self.window])) for k in self.window[0]}
        self.window = []
        if rate is not None:  # None for a window holding only the compiling first step
            means['steps_per_sec'] = rate
            # Real examples consumed: each step reads n_critic batches.
            means['examples_per_sec'] = (rate * self.config.data.batch_size *
                                         self.config.train.n_critic)
        writer.write_scalars(step, means)
        summary = (f"d_loss {means['d_loss']:.3f}  g_loss {means['g_loss']:.3f}  "
                   f"acc r/f {means['d_acc_real']:.2f}/{means['d_acc_fake']:.2f}")
        if progress.disable:
            speed = f'  {rate:.2f} steps/s' if rate is not None else ''
            log(f'step {step}/{self.config.train.num_steps}  {summary}{speed}')
        else:
            progress.set_postfix_str(summary)

    def _finish(self, state, writer, samples: bool):
        step = int(state.step)
        path = self.save_samples(state, writer) if samples else os.path.join(
            self.workdir, 'samples', f'step_{step:07d}.png')
        writer.close()
        plotted = self.is_chief and summaries.plot_losses(
            os.path.join(self.workdir, 'metrics.jsonl'), os.path.join(self.workdir, 'losses.png'))
        if self.is_chief and self.evaluator is not None:
            summaries.plot_eval(os.path.join(self.workdir, 'eval', 'history.jsonl'),
                                os.path.join(self.workdir, 'eval.png'))
        log(f'done at step {step}: samples {path}' +
            (f', loss curves {os.path.join(self.workdir, "losses.png")}' if plotted else ''))


class _BestCheckpoint:
    """WORKDIR/best: the checkpoint with the best value of one evaluation metric so far.

    best.json ({metric, value, step, metrics}) is written only after the checkpoint is complete
    on disk, so it never names a checkpoint that is not there; after a crash between the two the
    record is the previous (worse) one, and the next better evaluation replaces both.
    """

    def __init__(self, workdir: str, metric: str, write: bool = True):
        self.metric = metric
        self.directory = os.path.join(workdir, 'best')
        self.path = os.path.join(self.directory, 'best.json')
        self._write = write
        self.value = None
        if os.path.exists(self.path):
            with open(self.path, encoding='utf-8') as f:
                record = json.load(f)
            if record.get('metric') == metric:
                self.value = record['value']
            else:
                log(f"best checkpoint so far was chosen by {record.get('metric')}; now choosing "
                    f'by {metric}, the record starts over')
        self._ckpt = checkpoint.Checkpointer(self.directory, max_to_keep=1)

    def offer(self, step: int, values: dict[str, float], state: GANState,
              data_position: int) -> bool:
        """Keeps `state` if values[metric] improves on the best so far; returns whether it did."""
        from ganjax.evaluate import is_better  # noqa: PLC0415 (evaluate imports this module)
        value = values[self.metric]
        if not is_better(self.metric, value, self.value):
            return False
        self._ckpt.save(step, state, data_position)
        self._ckpt.wait()
        self.value = value
        if self._write:
            _write_json_atomic(self.path, {'metric': self.metric, 'value': value, 'step': step,
                                           'metrics': values})
        return True

    def close(self) -> None:
        self._ckpt.close()


class _NullWriter:
    """Stands in for the MetricsWriter on processes other than the chief."""

    def write_scalars(self, step, scalars):
        del step, scalars

    def write_eval(self, step, values):
        del step, values

    def write_image(self, step, tag, picture):
        del step, tag, picture

    def close(self):
        pass


def _data_on_device(config: ConfigDict, source) -> bool:
    """Whether to hold the training split on the devices (`data.on_device`)."""
    mode = config.data.on_device
    if mode != 'auto':
        return mode == 'always'
    size = len(source) * int(np.prod(source.data_shape)) * np.dtype(source.dtype).itemsize
    return size <= config.data.on_device_max_mb * 2 ** 20


def _read_all(source, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Every example of a source, in order, as host arrays ({'x', 'label', ...})."""
    parts = [source.get_batch(np.arange(i, min(i + chunk, len(source))))
             for i in range(0, len(source), chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _progress_bar(cfg: ConfigDict, step: int, num_steps: int):
    from tqdm.auto import tqdm
    enabled = cfg.train.progress and sys.stderr.isatty()
    return tqdm(total=num_steps, initial=step, disable=not enabled, unit='step',
                dynamic_ncols=True, desc='train')


def train_and_evaluate(config: ConfigDict, workdir: str) -> GANState:
    """Trains a GAN as `config` says, in `workdir`, resuming the run there if there is one.

    Args:
      config: the full run config.
      workdir: the run's folder (created if needed).

    Returns:
      The final GANState.

    Raises:
      ConfigError: for a bad config, or a workdir holding a run with another config.
      DataError: for a missing, empty or corrupt dataset.
      NonFiniteError: when a loss or gradient becomes NaN or infinite (the last good checkpoint
        is kept and nothing later is written).
    """
    config_lib.validate(config)
    config = fix_schedule_steps(config, workdir)
    # Before anything touches a device: a multi-host run joins its peers here.
    parallel.initialize_distributed(config)
    enable_compilation_cache(config.train.compilation_cache)
    # Refuse a different config before loading anything.
    reconcile_config(config, workdir, write=False)
    trainer = _Trainer(config, workdir)
    trainer.open_workdir()
    try:
        return trainer.run()
    finally:
        trainer.ckpt.close()
        if trainer.best is not None:
            trainer.best.close()


def fix_schedule_steps(config: ConfigDict, workdir: str) -> ConfigDict:
    """Fixes `optim.schedule_steps` when it is 0: the saved run's value on a resume, else the
    run's `train.num_steps` at its start, so that a resume with another `train.num_steps` keeps the
    learning-rate schedule (the value is stored in the run's config.json).

    Args:
      config: the config asked for (not changed).
      workdir: the run's folder.

    Returns:
      A copy of `config` with `optim.schedule_steps` > 0.
    """
    config = copy.deepcopy(config)
    if config.optim.schedule_steps > 0:
        return config
    path = os.path.join(workdir, 'config.json')
    saved = None
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            saved = config_lib.from_json(f.read()).optim.schedule_steps
    config.optim.schedule_steps = saved if saved else schedule_steps(config)
    return config


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


def load_run(workdir: str, step: int | None = None, best: bool = False):
    """Restores a run's GANDef and GANState (for sampling and evaluation).

    Args:
      workdir: the run's folder.
      step: checkpoint step; the latest if None.
      best: restore the checkpoint kept in WORKDIR/best (by `eval.best_metric`) instead.

    Returns:
      (config, gan, state).

    Raises:
      ConfigError: if the workdir holds no run or no checkpoint.
    """
    config = load_workdir_config(workdir)
    info_path = os.path.join(workdir, 'run_info.json')
    with open(info_path, encoding='utf-8') as f:
        info = json.load(f)
    data_shape = tuple(info['data_shape'])
    gan = build_gan(config, data_shape, int(info.get('num_classes', 0)),
                    scaling=load_scaling(workdir))
    folder = os.path.join(workdir, 'best' if best else 'checkpoints')
    if best and not os.path.exists(os.path.join(folder, 'best.json')):
        raise ConfigError(f'{workdir} has no best checkpoint (it is kept when a run evaluates '
                          'during training: eval.every > 0 and eval.best_metric set)')
    ckpt = checkpoint.Checkpointer(folder)
    try:
        if ckpt.latest_step() is None:
            raise ConfigError(f'{workdir} has no checkpoint yet')
        template = jax.eval_shape(lambda: create_state(config, gan))
        state, _ = ckpt.restore(template, step)
    finally:
        ckpt.close()
    return config, gan, state
