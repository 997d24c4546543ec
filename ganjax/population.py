"""Training a sweep: populations of GANs, each program's members vmapped into one XLA program.

`train_sweep(config, workdir)` expands the config's `sweep` section (`ganjax.sweep`), groups the
members into programs, and trains each program's members together: their states are stacked on a
leading axis, every member reads its own batches in its own data order, and the step is vmapped
over them (`ganjax.compose.compile_step(population=True)`). A member therefore trains exactly as
its own `ganjax train` run would (tests/test_sweep.py checks parameters to float32 rounding).

A sweep's folder:

    DIR/config.json            the sweep's config (with its sweep section)
    DIR/sweep.json             the members (variant, setting, seed, overrides, program) and programs
    DIR/groups/G/checkpoints/  each program's stacked state, with every member's open log window
    DIR/members/NNN/           an ordinary run folder of member NNN, without checkpoints/:
                               config.json (its own config), run_info.json, member.json (its
                               record: step, diverged_at), metrics.jsonl, eval/history.jsonl,
                               samples/, best/ (its best checkpoint, an ordinary one), tensorboard/

A member whose update goes non-finite is frozen at its last finite state (`compose.population_step`)
and marked in member.json; the others train on. `ganjax sample/eval --workdir DIR/members/NNN` (or
`--member N`) read a member's state from its program's checkpoint; `export_member` writes it out
as an ordinary run that `ganjax train` resumes. A kill at any moment leaves every program's
checkpoint and every member's files consistent (they are cut back to the checkpoint on resume).
"""

from __future__ import annotations

import os
import shutil
import time

import jax
import numpy as np
from ml_collections import ConfigDict

from ganjax import (checkpoint, compose, config as config_lib, data, evaluate, images, parallel,
                    run_dir, summaries)
from ganjax import sweep as sweep_lib
from ganjax import train as train_lib
from ganjax.errors import ConfigError
from ganjax.metrics.goals import METRIC_GOALS
from ganjax.train_step import build_gan, make_generate_fn, sample_latent

log = train_lib.log


def member_dir(workdir: str, index: int) -> str:
    """DIR/members/NNN of member `index` of the sweep in `workdir`."""
    return os.path.join(workdir, 'members', f'{int(index):03d}')


class _Program:
    """One program of a sweep: its members, compiled step, checkpoints and their files."""

    def __init__(self, config: ConfigDict, workdir: str, members: list[sweep_lib.Member],
                 source, evaluator_cache: dict):
        self.config = config
        self.workdir = workdir
        self.members = members
        self.index = members[0].group
        self.first = members[0].config
        self.source = source
        self.data_shape = tuple(int(d) for d in source.data_shape)
        self.gan = build_gan(self.first, self.data_shape, source.num_classes,
                             scaling=source.scaling, loss_names=sweep_lib.loss_names(members))
        # The layout is the sweep's (its data, device and sweep keys are every member's).
        self.par = parallel.Parallel(config, population=True)
        if len(members) % self.par.member_devices:
            raise ConfigError(f'program {self.index} of the sweep has {len(members)} members, '
                              f'which do not divide over sweep.member_devices='
                              f'{self.par.member_devices}')
        self.is_chief = jax.process_index() == 0
        self.on_device = train_lib.data_on_device(self.first, source)
        self.generate = jax.jit(make_generate_fn(self.gan))
        self.fixed_z = [sample_latent(jax.random.fold_in(jax.random.PRNGKey(m.seed),
                                                         train_lib.SAMPLE_NOISE_SALT),
                                      config.train.num_samples, self.gan.latent_dim)
                        for m in members]
        self.fixed_y = (np.arange(config.train.num_samples, dtype=np.int32) %
                        self.gan.num_classes) if self.gan.num_classes else None
        # Each member is evaluated as its own run would be: against the held-out subset its
        # seed draws. One evaluator per (model shape, seed), so a reference's features are
        # computed once.
        self.evaluators = [None] * len(members)
        if config.eval.every:
            for i, m in enumerate(members):
                key = (self.gan.latent_dim, self.gan.num_classes, self.data_shape, m.seed)
                if key not in evaluator_cache:
                    evaluator_cache[key] = evaluate.Evaluator(
                        m.config, self.gan, config.eval.num_samples,
                        features=config.eval.features, features_dir=config.eval.features_dir,
                        inception_weights=config.eval.inception_weights,
                        batch_size=config.eval.batch_size, num_devices=1)
                    if config.eval.best_metric:
                        evaluate.check_best_metric(config.eval.best_metric,
                                                   evaluator_cache[key])
                self.evaluators[i] = evaluator_cache[key]
        self.evaluator = self.evaluators[0]
        self.reference_points = None
        if self.data_shape == (2,):
            self.reference_points = source.get_batch(np.arange(min(512, len(source))))['x']
        self.dirs = [member_dir(workdir, m.index) for m in members]
        self.ckpt = checkpoint.Checkpointer(
            os.path.join(workdir, 'groups', str(self.index), 'checkpoints'),
            config.train.keep_checkpoints)
        self._step_fns = {}
        self.best = [None] * len(members)
        self.windows = [[] for _ in members]
        self.diverged = [0] * len(members)
        self.pending = None

    # --- state ---------------------------------------------------------------------------

    def _make(self):
        return jax.tree.map(lambda *x: jax.numpy.stack(x), *[
            compose.population_member_state(m.config, self.gan) for m in self.members])

    def restore(self):
        """(step or None, stacked state): the latest readable checkpoint, or a new population."""
        if self.ckpt.latest_step() is not None:
            try:
                # The program's step is saved as the checkpoint's data position: frozen members'
                # own steps lag behind it.
                state, step = self.ckpt.restore(self.par.abstract_state(
                    jax.eval_shape(self._make), leading=1), warn=log)
            except FileNotFoundError:
                pass
            else:
                extra = self.ckpt.read_extra(step)
                self.windows = [list(w) for w in extra.get('log_windows', self.windows)]
                self.diverged = [int(d) for d in
                                 jax.device_get(state.hparams[compose.DIVERGED])]
                return step, state
        return None, compose.init_population(self.gan, self.par,
                                             [m.config for m in self.members])

    def member_step(self, state, i: int) -> int:
        return int(jax.device_get(state.step[i]))

    def _host_member(self, state, i: int):
        return jax.device_get(compose.solo_state(state, i))

    # --- files ---------------------------------------------------------------------------

    def open_files(self, step: int | None, state) -> None:
        """Cuts every member's files back to the checkpoint, records member.json, opens best/."""
        for i, m in enumerate(self.members):
            if self.is_chief:
                run_dir.trim_to_checkpoint(self.dirs[i], step)
                self._write_member_json(i, state)
            if self.evaluator is not None and self.config.eval.best_metric:
                self.best[i] = run_dir.BestCheckpoint(self.dirs[i], self.config.eval.best_metric,
                                                      write=self.is_chief, log=log)

    def _write_member_json(self, i: int, state) -> None:
        m = self.members[i]
        run_dir.write_json_atomic(os.path.join(self.dirs[i], run_dir.MEMBER_FILE), {
            **m.record(), 'step': self.member_step(state, i),
            'diverged_at': self.diverged[i] or None,
            'program': {'index': self.index, 'size': len(self.members), 'position': i,
                        'loss_names': list(self.gan.loss_names),
                        'checkpoints': os.path.join('..', '..', 'groups', str(self.index),
                                                    'checkpoints')}})

    def close(self) -> None:
        self.ckpt.close()
        for b in self.best:
            if b is not None:
                b.close()

    # --- training ------------------------------------------------------------------------

    def step_fn(self, count: int):
        if count not in self._step_fns:
            self._step_fns[count] = compose.compile_step(
                self.first, self.gan, self.par, steps_per_call=count, on_device=self.on_device,
                population=True, members_per_pass=int(self.config.sweep.members_per_pass))
        return self._step_fns[count]

    def _alive(self) -> list[int]:
        return [i for i in range(len(self.members)) if not self.diverged[i]]

    def _args(self, iterators, count: int, data_on_device):
        """The step's arguments after the state: per member its own batches, [(k,) P, ...]."""
        n_critic = self.first.train.n_critic
        member_axis = 1 if count > 1 else 0
        if data_on_device is not None:
            calls = []
            for _ in range(count):
                rows = [iterators[i].next_global_indices().reshape(n_critic, -1)
                        if not self.diverged[i] else None for i in range(len(self.members))]
                shape = next(r.shape for r in rows if r is not None)
                calls.append(np.stack([np.zeros(shape, np.int32) if r is None
                                       else r.astype(np.int32) for r in rows]))
            idx = calls[0] if count == 1 else np.stack(calls)
            return data_on_device, self.par.put_indices(idx, member_axis=member_axis)
        calls = []
        for _ in range(count):
            batches = [next(iterators[i]) if not self.diverged[i] else None
                       for i in range(len(self.members))]
            like = next(b for b in batches if b is not None)
            # A frozen member computes on zeros: its result is thrown away.
            batches = [b if b is not None else {k: np.zeros_like(v) for k, v in like.items()}
                       for b in batches]
            calls.append({k: np.stack([np.reshape(b[k], (n_critic, -1) + np.shape(b[k])[1:])
                                       for b in batches]) for k in like})
        local = calls[0] if count == 1 else {k: np.stack([c[k] for c in calls])
                                             for k in calls[0]}
        return (self.par.put_batch(local, batch_axis=member_axis + 2, member_axis=member_axis),)

    def _check_pending(self, step_now: int) -> None:
        """Reads the previous call's metrics: appends each live member's to its window, and
        freezes members whose update went non-finite."""
        if self.pending is None:
            return
        first, metrics = self.pending
        self.pending = None
        host = self.par.host_metrics(metrics)
        diverged = host.pop(compose.DIVERGED)
        # [k, P] for k steps per call, [P] for one.
        steps = diverged.reshape(-1, len(self.members))
        host = {k: v.reshape(-1, len(self.members)) for k, v in host.items()}
        for j in range(steps.shape[0]):
            for i in range(len(self.members)):
                if self.diverged[i]:
                    continue
                if steps[j, i] > 0:
                    self.diverged[i] = int(steps[j, i])
                    bad = sorted(k for k, v in host.items() if not np.isfinite(v[j, i]))
                    log(f'member {self.members[i].name} ({self.members[i].variant}, seed '
                        f'{self.members[i].seed}) diverged at step {self.diverged[i]}'
                        + (f' ({", ".join(bad)} not finite)' if bad else '') +
                        f'; frozen at step {self.diverged[i] - 1}, the others train on')
                    continue
                self.windows[i].append({k: float(v[j, i]) for k, v in host.items()})
        del step_now

    def run(self) -> str | None:
        """Trains the program to train.num_steps; returns the name of a signal that stopped it
        (its checkpoint written), or None."""
        cfg = self.config
        start, state = self.restore()
        step = 0 if start is None else start
        self.open_files(start, state)
        writers = [summaries.MetricsWriter(d, resume_step=step) if self.is_chief
                   else train_lib.NullWriter() for d in self.dirs]
        num_steps = cfg.train.num_steps
        try:
            if self.evaluator is not None and step:
                for i in self._alive():
                    if self._eval_missing(i, step):
                        log(f'member {self.members[i].name}: the evaluation of step {step} was '
                            'not recorded; evaluating it now')
                        self._eval_member(state, i, writers[i])
            if step >= num_steps or not self._alive():
                self._finish(state, writers, sampled=None)
                return None
            return self._train(state, step, writers)
        finally:
            for w in writers:
                w.close()

    def _train(self, state, step: int, writers) -> str | None:
        cfg = self.config
        n_critic, batch_size = self.first.train.n_critic, cfg.data.batch_size
        num_steps = cfg.train.num_steps
        log(f'program {self.index}: {len(self.members)} members '
            f'({", ".join(self.gan.loss_names)}), {self.par.describe()}')
        iterators = [data.BatchIterator(
            self.source, batch_size * n_critic, seed=m.seed,
            position=self.member_step(state, i), process_index=jax.process_index(),
            process_count=jax.process_count(), prefetch=0, groups=n_critic,
            labelled=getattr(self.source, 'labelled', None),
            labelled_batch_size=self.gan.labelled_rows) for i, m in enumerate(self.members)]
        data_on_device = None
        if self.on_device:
            data_on_device = self.par.put_dataset(train_lib.read_all(self.source))
        state = self.par.place_state(state, leading=1)
        k = cfg.train.steps_per_call
        events = (cfg.train.log_every, cfg.train.sample_every, cfg.train.checkpoint_every) + \
            ((cfg.eval.every,) if self.evaluator is not None else ())
        progress = train_lib.progress_bar(cfg, step, num_steps)
        interrupted, sampled, evaluated, first_step = None, None, None, step
        try:
            with train_lib.StopRequest() as stop:
                t_window, steps_window = None, 0
                while step < num_steps and not stop.requested and self._alive():
                    to_event = min([e - step % e for e in events] + [num_steps - step])
                    count = k if to_event >= k else 1
                    step_fn = self.step_fn(count)
                    args = self._args(iterators, count, data_on_device)
                    if t_window is None:
                        t0 = time.perf_counter()
                        state, metrics = step_fn(state, *args)
                        jax.block_until_ready(state)
                        log(f'program {self.index}: first call (compile and run) took '
                            f'{time.perf_counter() - t0:.1f} s')
                        t_window = time.perf_counter()
                    else:
                        state, metrics = step_fn(state, *args)
                        steps_window += count
                    self._check_pending(step)
                    self.pending = (step + 1, metrics)
                    step += count
                    progress.update(count)
                    run_dir.kill_point('after_step', step)
                    if step % cfg.train.log_every == 0 or step == num_steps:
                        self._check_pending(step)
                        elapsed = time.perf_counter() - t_window
                        rate = steps_window / elapsed if steps_window else None
                        self._log(step, rate, writers, progress)
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
                        self._check_pending(step)
                        self._samples(state, writers, step)
                        sampled = step
                    if step % cfg.train.checkpoint_every == 0:
                        self._save(step, state)
                    if self.evaluator is not None and step % cfg.eval.every == 0:
                        self._check_pending(step)
                        self._evaluate(state, writers, step)
                        evaluated = step
                    if due and t_window is not None:
                        t_window += time.perf_counter() - t_events
                self._check_pending(step)
                interrupted = stop.signal_name
            if interrupted and step == first_step:
                log(f'{interrupted} before the first step of this session: nothing new to save')
            else:
                self._save(step, state)
                if interrupted:
                    log(f'{interrupted}: checkpoint of step {step} written; stopping')
        finally:
            progress.close()
            self.ckpt.wait()
        if interrupted:
            return interrupted
        if not self._alive():
            log(f'program {self.index}: every member diverged; stopped at step {step}')
        if self.evaluator is not None and evaluated != step:
            self._evaluate(state, writers, step)
        self._finish(state, writers, sampled=sampled)
        return None

    def _save(self, step: int, state) -> None:
        self._check_pending(step)
        host = jax.device_get(state)
        self.ckpt.save(step, host, step, extra={'log_windows': self.windows})
        run_dir.kill_point('during_checkpoint', step)
        run_dir.kill_point('after_checkpoint', step, before=self.ckpt.wait)
        if self.is_chief:
            for i in range(len(self.members)):
                self._write_member_json(i, host)

    def _log(self, step: int, rate, writers, progress) -> None:
        alive = self._alive()
        d_losses = []
        for i in range(len(self.members)):
            if not self.windows[i]:
                continue
            w = self.windows[i]
            means = {k: float(np.mean([m[k] for m in w])) for k in w[0]}
            self.windows[i] = []
            if rate is not None:
                means['steps_per_sec'] = rate
                means['examples_per_sec'] = rate * self.config.data.batch_size * \
                    self.first.train.n_critic
            writers[i].write_scalars(step, means)
            d_losses.append(means['d_loss'])
        if not d_losses:
            return
        speed = (f'  {rate:.2f} steps/s, {rate * self.config.data.batch_size * len(alive) * self.first.train.n_critic:,.0f} '
                 'examples/s over the members' if rate is not None else '')
        line = (f'program {self.index} step {step}/{self.config.train.num_steps}  '
                f'{len(alive)}/{len(self.members)} members training  d_loss median '
                f'{np.median(d_losses):.3f}{speed}')
        if progress.disable:
            log(line)
        else:
            progress.set_postfix_str(f'{len(alive)}/{len(self.members)} training')

    def _samples(self, state, writers, step: int) -> None:
        for i in self._alive():
            x = np.asarray(jax.device_get(self.generate(
                jax.tree.map(lambda v: v[i], state.ema_params),
                jax.tree.map(lambda v: v[i], state.g_state), self.fixed_z[i], self.fixed_y)))
            if self.is_chief:
                picture = images.samples_figure(x, self.reference_points)
                images.save_png(picture, os.path.join(self.dirs[i], 'samples',
                                                       f'step_{step:07d}.png'))
                writers[i].write_image(step, 'samples/ema', picture)

    def _eval_missing(self, i: int, step: int) -> bool:
        if step % self.config.eval.every and step < self.config.train.num_steps:
            return False
        history = summaries.read_jsonl(os.path.join(self.dirs[i], 'eval', 'history.jsonl'))
        return all(r['step'] != step for r in history)

    def _eval_member(self, state, i: int, writer) -> dict[str, float]:
        one = self._host_member(state, i)
        values = self.evaluators[i].generator_metrics(one.ema_params, one.g_state)
        step = int(one.step)
        if self.best[i] is not None:
            self.best[i].offer(step, values, one, step)
        writer.write_eval(step, values)
        return values

    def _evaluate(self, state, writers, step: int) -> None:
        t0 = time.perf_counter()
        metric = self.config.eval.best_metric or 'fid'
        values = [self._eval_member(state, i, writers[i])[metric] for i in self._alive()]
        run_dir.kill_point('after_eval', step)
        finite = [v for v in values if np.isfinite(v)]
        if finite:
            best = min(finite) if METRIC_GOALS[metric] == 'min' else max(finite)
            log(f'program {self.index} eval at step {step} ({len(values)} members, '
                f'{time.perf_counter() - t0:.1f} s): {metric} median {np.median(finite):.4g}, '
                f'best {best:.4g}')

    def _finish(self, state, writers, sampled) -> None:
        alive = self._alive()
        if alive:
            step = self.member_step(state, alive[0])
            path = os.path.join(self.dirs[alive[0]], 'samples', f'step_{step:07d}.png')
            if sampled != step and not os.path.exists(path):
                self._samples(state, writers, step)
        for w in writers:
            w.close()
        if self.is_chief:
            host = jax.device_get(state)
            for i in range(len(self.members)):
                self._write_member_json(i, host)
                summaries.plot_losses(os.path.join(self.dirs[i], 'metrics.jsonl'),
                                      os.path.join(self.dirs[i], 'losses.png'))
                if self.evaluator is not None:
                    summaries.plot_eval(os.path.join(self.dirs[i], 'eval', 'history.jsonl'),
                                        os.path.join(self.dirs[i], 'eval.png'))


def _prepare(config: ConfigDict, workdir: str):
    """Checks the sweep, writes DIR/config.json, sweep.json and each member's config and run
    info; returns (config, members, source)."""
    config_lib.validate(config)
    config = run_dir.fix_schedule_steps(config, workdir)
    members = sweep_lib.expand(config)
    source = data.build_source(config.data, 'train')
    data_shape = tuple(int(d) for d in source.data_shape)
    os.makedirs(workdir, exist_ok=True)
    is_chief = jax.process_index() == 0
    run_dir.reconcile_config(config, workdir, write=is_chief)
    if is_chief:
        programs = {}
        for m in members:
            programs.setdefault(m.group, []).append(m)
        run_dir.write_json_atomic(os.path.join(workdir, 'sweep.json'), {
            'members': [m.record() for m in members],
            'variants': [name for name, _ in sweep_lib.parse_variants(config)],
            'searched': sorted({k for m in members for k in m.setting}),
            'groups': [{'index': g, 'members': [m.index for m in ms],
                        'loss_names': list(sweep_lib.loss_names(ms))}
                       for g, ms in sorted(programs.items())]})
        for m in members:
            folder = member_dir(workdir, m.index)
            os.makedirs(folder, exist_ok=True)
            run_dir.reconcile_config(m.config, folder, write=True)
            run_dir.write_json_atomic(os.path.join(folder, 'run_info.json'), {
                'data_shape': list(data_shape), 'dataset': source.description,
                'num_classes': int(source.num_classes),
                'class_names': list(run_dir.source_class_names(source)),
                'num_train_examples': len(source), 'jax_version': jax.__version__,
                'scaling': source.scaling.to_json(), 'sweep_member': m.index})
    return config, members, source


def train_sweep(config: ConfigDict, workdir: str) -> list[dict]:
    """Trains every member of the config's sweep in `workdir`, resuming what is there.

    Args:
      config: a config with a `sweep` section (`ganjax.sweep`).
      workdir: the sweep's folder (created if needed).

    Returns:
      Each member's member.json record (step, diverged_at, variant, setting, seed, ...).

    Raises:
      ConfigError: for a bad config or sweep section, or a workdir holding another sweep.
      DataError: for a missing, empty or corrupt dataset.

    SIGTERM or Ctrl-C stops the sweep after the current program's checkpoint is written; the
    same call resumes it.
    """
    config_lib.validate(config)
    config = run_dir.fix_schedule_steps(config, workdir)
    parallel.initialize_distributed(config)
    train_lib.enable_compilation_cache(config.train.compilation_cache)
    run_dir.reconcile_config(config, workdir, write=False)
    config, members, source = _prepare(config, workdir)
    programs: dict[int, list[sweep_lib.Member]] = {}
    for m in members:
        programs.setdefault(m.group, []).append(m)
    log(f'sweep in {workdir}: {len(members)} members in {len(programs)} program(s) on '
        f'{source.description}')
    run_dir.kill_point('setup', 0)
    evaluators: dict = {}
    for group in sorted(programs):
        program = _Program(config, workdir, programs[group], source, evaluators)
        try:
            interrupted = program.run()
        finally:
            program.close()
        if interrupted:
            log(f'{interrupted}: sweep stopped; the same command resumes it')
            return [run_dir.read_member_record(member_dir(workdir, m.index)) for m in members]
    records = [run_dir.read_member_record(member_dir(workdir, m.index)) for m in members]
    diverged = [r for r in records if r.get('diverged_at')]
    log(f'sweep done: {len(members)} members' +
        (f', {len(diverged)} diverged (frozen): ' + ', '.join(
            f"{r['index']:03d} at step {r['diverged_at']}" for r in diverged) if diverged else '')
        + f'; write the study report with `ganjax report --workdir {workdir}`')
    return records


def export_member(workdir: str, index: int, out: str) -> str:
    """Writes member `index` of the sweep in `workdir` as an ordinary run in `out`.

    The member's files (config, run info, metrics, evaluations, samples, best checkpoint) are
    copied and its state is taken from its program's latest checkpoint, with its open log
    window, so `ganjax train --workdir OUT` resumes it as if it had always trained alone. A
    frozen (diverged) member is exported at its last finite state.

    Args:
      workdir: the sweep's folder.
      index: the member's index (DIR/members/NNN).
      out: a new folder (or an empty one).

    Returns:
      `out`.

    Raises:
      ConfigError: for an unknown member, a sweep without a checkpoint, or a non-empty `out`.
    """
    source_dir = member_dir(workdir, index)
    if not os.path.isfile(os.path.join(source_dir, run_dir.MEMBER_FILE)):
        raise ConfigError(f'{workdir} has no sweep member {index} ({source_dir} is missing)')
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ConfigError(f'--out {out} exists and is not an empty folder; export writes a new run')
    _, _, state = run_dir.load_run(source_dir)
    record = run_dir.read_member_record(source_dir)
    window = run_dir.member_log_window(source_dir)
    step = int(state.step)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    shutil.copytree(source_dir, out, dirs_exist_ok=True)
    os.remove(os.path.join(out, run_dir.MEMBER_FILE))
    run_dir.write_json_atomic(os.path.join(out, 'exported_from.json'), {
        'sweep': os.path.abspath(workdir), **record})
    run_dir.trim_to_checkpoint(out, step)
    ckpt = checkpoint.Checkpointer(os.path.join(out, 'checkpoints'))
    try:
        ckpt.save(step, state, step, extra={'log_window': window})
    finally:
        ckpt.close()
    return out
