"""The training loop: data, compiled step, checkpoints, metrics, samples, plots, signals.

`train_and_evaluate(config, workdir)` is a library function (the CLI only parses arguments). The
files of a run's workdir, and how they stay consistent with its last checkpoint after a kill, are
described in `ganjax.run_dir`.
"""

import os
import signal
import sys
import threading
import time

import jax
import numpy as np
from jax.experimental import multihost_utils
from ml_collections import ConfigDict

from ganjax import (checkpoint, compose, config as config_lib, data, evaluate, images, parallel,
                    run_dir, summaries)
from ganjax import sweep as sweep_lib
from ganjax.errors import ConfigError, NonFiniteError
from ganjax.state import GANState
from ganjax.train_step import build_gan, create_state, make_generate_fn, sample_latent

# Folded into the seed for the fixed noise of the sample grids, so they do not share randomness
# with the training steps.
SAMPLE_NOISE_SALT = 0x5A4D


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


class StopRequest:
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
        self.on_device = data_on_device(config, self.source)
        self.generate = jax.jit(make_generate_fn(self.gan))
        self.fixed_z = sample_latent(
            jax.random.fold_in(jax.random.PRNGKey(config.seed), SAMPLE_NOISE_SALT),
            config.train.num_samples, self.gan.latent_dim)
        # A conditional generator's grid cycles through the classes.
        self.fixed_y = (np.arange(config.train.num_samples, dtype=np.int32) %
                        self.gan.num_classes) if self.gan.num_classes else None
        # The evaluator is built before the workdir is touched too: a missing feature classifier
        # or weights file is a config error, not a failure after the first thousand steps.
        self.evaluator, self.best = None, None
        if config.eval.every:
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
        """Creates or checks the workdir, records config and run info, restores the last
        checkpoint and cuts the run's other files back to it."""
        os.makedirs(self.workdir, exist_ok=True)
        # Every process checks the config; one writes the run's files.
        run_dir.reconcile_config(self.config, self.workdir, write=self.is_chief)
        if self.is_chief:
            run_dir.write_json_atomic(os.path.join(self.workdir, 'run_info.json'), {
                'data_shape': list(self.data_shape), 'dataset': self.source.description,
                'num_classes': int(self.source.num_classes),
                'class_names': list(run_dir.source_class_names(self.source)),
                'num_train_examples': len(self.source), 'jax_version': jax.__version__,
                'scaling': self.source.scaling.to_json(),
                'layout': self.par.describe(), 'process_count': jax.process_count(),
                'devices': [str(d) for d in self.par.devices]})
        self.ckpt = checkpoint.Checkpointer(os.path.join(self.workdir, 'checkpoints'),
                                            self.config.train.keep_checkpoints)
        self.restored = self._restore()
        if self.is_chief:
            run_dir.trim_to_checkpoint(self.workdir, self.restored[0])
        if jax.process_count() > 1:
            # The other processes open best/ only once the chief has cut the files back.
            multihost_utils.sync_global_devices('ganjax: run directory trimmed')
        if self.evaluator is not None and self.config.eval.best_metric:
            self.best = run_dir.BestCheckpoint(self.workdir, self.config.eval.best_metric,
                                               write=self.is_chief, log=log)

    def _restore(self) -> tuple[int | None, GANState, int]:
        """(checkpoint step or None for a new run, canonical state, data position).

        The metrics of the log window that was open at the checkpoint come back too, so the
        first metrics line after a resume averages the same steps as an uninterrupted run's.
        """
        if self.ckpt.latest_step() is not None:
            try:
                state, position = self.ckpt.restore(self.par.abstract_state(
                    jax.eval_shape(lambda: create_state(self.config, self.gan))), warn=log)
            except FileNotFoundError:
                pass  # every checkpoint was unreadable (and set aside): a new run
            else:
                step = int(state.step)
                self.window = list(self.ckpt.read_extra(step).get('log_window', []))
                log(f'resuming {self.workdir} from step {step} (checkpoint restored)')
                return step, state, position
        state = self.par.init_state(lambda: create_state(self.config, self.gan))
        state = self.par.canonical_state(state)
        log(f'new run in {self.workdir}: {self.source.description}, data shape '
            f'{self.data_shape}, {count_params(state.g_params):,} G and {count_params(state.d_params):,} '
            'D parameters')
        return None, state, 0

    def save_checkpoint(self, step: int, state: GANState, position: int) -> None:
        """Starts writing the checkpoint of the canonical `state`, with the open log window."""
        self._check_pending()
        self.ckpt.save(step, state, position, extra={'log_window': self.window})
        run_dir.kill_point('during_checkpoint', step)
        run_dir.kill_point('after_checkpoint', step, before=self.ckpt.wait)

    def _eval_missing(self, step: int) -> bool:
        """Whether `step` is due an evaluation that the history lacks (a kill after its
        checkpoint committed and before its evaluation was recorded)."""
        if self.evaluator is None or step == 0:
            return False
        if step % self.config.eval.every and step < self.config.train.num_steps:
            return False
        history = summaries.read_jsonl(os.path.join(self.workdir, 'eval', 'history.jsonl'))
        return all(r['step'] != step for r in history)

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
        n_critic = self.config.train.n_critic
        if data_on_device is not None:
            idx = np.stack([iterator.next_global_indices().reshape(n_critic, -1).astype(np.int32)
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
        _, state, position = self.restored
        step = first_step = int(state.step)
        num_steps = cfg.train.num_steps
        writer = summaries.MetricsWriter(self.workdir, resume_step=step) if self.is_chief \
            else NullWriter()
        evaluated = None
        if self._eval_missing(step):
            log(f'the evaluation of step {step} was not recorded; evaluating it now')
            self.run_eval(state, position, writer)
            evaluated = step
        if step >= num_steps:
            log(f'run already complete at step {step} (train.num_steps={num_steps})')
            samples = os.path.join(self.workdir, 'samples', f'step_{step:07d}.png')
            self._finish(state, writer, samples=not os.path.exists(samples))
            return state
        log(f'layout: {self.par.describe()}; data '
            + ('on the devices' if self.on_device else 'from the host, prefetched'))

        n_critic, batch_size = cfg.train.n_critic, cfg.data.batch_size
        iterator = data.BatchIterator(
            self.source, batch_size * n_critic, seed=cfg.seed, position=position,
            process_index=jax.process_index(), process_count=jax.process_count(),
            prefetch=0 if self.on_device else cfg.data.prefetch, groups=n_critic,
            labelled=getattr(self.source, 'labelled', None),
            labelled_batch_size=self.gan.labelled_rows,
            **({} if self.on_device or not cfg.data.prefetch else dict(
                pipeline=cfg.data.pipeline, workers=cfg.data.workers, threads=cfg.data.threads)))
        data_on_device = None
        if self.on_device:
            data_on_device = self.par.put_dataset(read_all(self.source))
        state = self.par.place_state(state)
        k = cfg.train.steps_per_call
        events = (cfg.train.log_every, cfg.train.sample_every, cfg.train.checkpoint_every) + \
            ((cfg.eval.every,) if self.evaluator is not None else ())
        progress = progress_bar(cfg, step, num_steps)
        interrupted, sampled = None, None
        try:
            with StopRequest() as stop:
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
                    run_dir.kill_point('after_step', step)
                    if step % cfg.train.log_every == 0 or step == num_steps:
                        self._check_pending()
                        elapsed = time.perf_counter() - t_window
                        rate = steps_window / elapsed if steps_window else None
                        self._log_window(step, rate, writer, progress)
                        t_window, steps_window = time.perf_counter(), 0
                        run_dir.kill_point('after_log', step)
                    # The rate counts training calls only: samples, checkpoints and evaluations
                    # are left out of the window.
                    due = (step % cfg.train.sample_every == 0 or
                           step % cfg.train.checkpoint_every == 0 or
                           (self.evaluator is not None and step % cfg.eval.every == 0))
                    if due:
                        jax.block_until_ready(state)
                    t_events = time.perf_counter()
                    if step % cfg.train.sample_every == 0:
                        self.save_samples(self.par.canonical_state(state), writer)
                        sampled = step
                    if step % cfg.train.checkpoint_every == 0:
                        self.save_checkpoint(step, self.par.canonical_state(state),
                                             iterator.position)
                    if self.evaluator is not None and step % cfg.eval.every == 0:
                        self._check_pending()
                        self.run_eval(self.par.canonical_state(state), iterator.position, writer)
                        evaluated = step
                    if due and t_window is not None:
                        t_window += time.perf_counter() - t_events
                self._check_pending()
                interrupted = stop.signal_name
            state = self.par.canonical_state(state)
            if interrupted and step == first_step:
                # A signal between the handlers' install and the first step: nothing ran.
                log(f'{interrupted} before the first step of this session: nothing new to save; '
                    'stopping')
            else:
                self.save_checkpoint(step, state, iterator.position)
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
        checkpoint if it is the best so far.

        The history line is written last: a kill before it leaves the evaluation unrecorded, and
        the resumed run redoes it (and the best-checkpoint offer with it).
        """
        t0 = time.perf_counter()
        values = self.evaluator.generator_metrics(state.ema_params, state.g_state)
        step = int(state.step)
        # One class's FID (fid_class_<k>) goes to the history, not the log line: their mean does.
        line = '  '.join(f'{k} {v:.4g}' for k, v in values.items()
                         if not k.endswith('_std') and not k.startswith('fid_class_'))
        note = ''
        if self.best is not None and self.best.offer(step, values, state, data_position):
            note = f'  (best {self.best.metric} so far: kept in {self.best.directory})'
        writer.write_eval(step, values)
        run_dir.kill_point('after_eval', step)
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


class NullWriter:
    """Stands in for the MetricsWriter on processes other than the chief."""

    def write_scalars(self, step, scalars):
        del step, scalars

    def write_eval(self, step, values):
        del step, values

    def write_image(self, step, tag, picture):
        del step, tag, picture

    def close(self):
        pass


def data_on_device(config: ConfigDict, source) -> bool:
    """Whether to hold the training split on the devices (`data.on_device`).

    Args:
      config: the run config.
      source: the training split.

    Returns:
      True for `data.on_device='always'`, or 'auto' and a split within `data.on_device_max_mb`.
    """
    mode = config.data.on_device
    if mode != 'auto':
        return mode == 'always'
    size = len(source) * int(np.prod(source.data_shape)) * np.dtype(source.dtype).itemsize
    return size <= config.data.on_device_max_mb * 2 ** 20


def read_all(source, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Every example of a source, in order, as host arrays ({'x', 'label', ...}).

    Args:
      source: a `ganjax.data` source.
      chunk: examples read per call.

    Returns:
      key -> array [len(source), ...].
    """
    parts = [source.get_batch(np.arange(i, min(i + chunk, len(source))))
             for i in range(0, len(source), chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def count_params(tree) -> int:
    """The number of elements in a pytree of arrays (parameters of a model)."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def progress_bar(cfg: ConfigDict, step: int, num_steps: int):
    """A tqdm bar from `step` to `num_steps`, shown when `train.progress` and stderr is a terminal."""
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
      ConfigError: for a bad config (or one with a sweep section), or a workdir holding a run
        with another config.
      DataError: for a missing, empty or corrupt dataset.
      NonFiniteError: when a loss or gradient becomes NaN or infinite (the last good checkpoint
        is kept and nothing later is written).
    """
    config_lib.validate(config)
    if sweep_lib.is_sweep(config):
        raise ConfigError('this config has a sweep section (sweep.seeds, variants, grid, points or '
                          'random): train its population with `ganjax sweep`, or one member '
                          'alone with the member\'s own config (DIR/members/NNN/config.json)')
    config = run_dir.fix_schedule_steps(config, workdir)
    # Before anything touches a device: a multi-host run joins its peers here.
    parallel.initialize_distributed(config)
    enable_compilation_cache(config.train.compilation_cache)
    # Refuse a different config before loading anything.
    run_dir.reconcile_config(config, workdir, write=False)
    trainer = _Trainer(config, workdir)
    run_dir.kill_point('setup', 0)
    trainer.open_workdir()
    try:
        return trainer.run()
    finally:
        trainer.ckpt.close()
        if trainer.best is not None:
            trainer.best.close()
