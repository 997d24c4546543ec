"""An infinite, shuffled, seeded, epoch-aware batch iterator whose whole state is one integer.

Batch k is a pure function of (seed, k): epoch e = k // batches_per_epoch reads the permutation
np.random.default_rng([seed, e]).permutation(len(source)) in consecutive slices of batch_size
(the remainder of each epoch is dropped). So a run resumed at position k sees exactly the
batches an uninterrupted run would, and every process computes the same global batch and keeps
its own contiguous slice of it, with no communication. A global batch may be made of `groups`
sub-batches (e.g. the n_critic batches of one training step); each process then keeps its slice of
every sub-batch, so that each sub-batch is split over the processes like the devices split it.

Two ways of reading ahead give the same batches (benchmarks/input_pipeline.py measures both):

* 'thread' (default): one background thread and a queue. Fastest for the in-memory sources
  (image_folder, mnist_5k, csv, toys), whose batch is a gather: 4.4 CPU us per example where
  grain spent 6.5-7.1 on the 2-core CPU measured, and 1.4-1.6x grain's examples/s.
* 'grain': the batches are the elements of a `grain.MapDataset` (element k = this process's part
  of batch k) read ahead by grain's threads or worker processes; grain's checkpoint state of the
  iterator is the position itself (`next_index`). For sources that decode per example (tfds) on
  hosts with cores to spare: worker processes take the decoding out of the training process
  (~30 CPU us per example left in it instead of ~950). On the shared 2-core CPU measured, a
  decoding source read at the same rate either way (~460-530 examples/s).

The indices are never drawn with grain's own `shuffle`: grain permutes one index per Python call
(its index shuffle, 12-40 us per index), which cost 73 CPU us per example and held an in-memory
source to 6.6k examples/s, where one numpy permutation per epoch costs ~0.1 ms in all.

grain imports jax, so it is imported when a 'grain' iterator starts reading ahead, not with this
module: the data package stays importable without jax.
"""

from __future__ import annotations

import collections
import queue
import threading
import weakref
from typing import Any

import numpy as np

from ganjax.data.source import Source
from ganjax.errors import ConfigError, DataError


class _BatchPlan:
    """The pure part of the iterator: which indices batch k holds, and reading them.

    Kept apart from `BatchIterator` so the readers hold no reference to the iterator, which can
    then be garbage-collected (and its readers stopped) when dropped; picklable so grain can send
    it to worker processes.
    """

    def __init__(self, source: Source, batch_size: int, seed: int, process_index: int,
                 process_count: int, groups: int = 1, labelled: np.ndarray | None = None,
                 labelled_size: int = 0):
        self.source = source
        self.groups = groups
        self.batch_size = batch_size
        self.seed = seed
        self.length = len(source)
        self.batches_per_epoch = self.length // batch_size
        self.labelled = None if labelled is None else np.asarray(labelled, np.int64)
        self.labelled_size = labelled_size
        self.local_size = (batch_size // groups + labelled_size) // process_count
        self.local_start = process_index * self.local_size
        self._perms: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_perms'] = collections.OrderedDict()
        del state['_lock']
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def permutation(self, epoch: int) -> np.ndarray:
        """Returns the (cached) shuffled order of epoch `epoch`."""
        with self._lock:
            perm = self._perms.get(epoch)
            if perm is None:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.length)
                self._perms[epoch] = perm
                # Two epochs suffice: the readers run a few batches ahead at most.
                while len(self._perms) > 2:
                    self._perms.popitem(last=False)
            return perm

    def global_indices(self, k: int) -> np.ndarray:
        """Returns the source indices of global batch k: [batch_size], or with a labelled stream
        each of the `groups` sub-batches followed by its `labelled_size` labelled indices."""
        epoch, step = divmod(k, self.batches_per_epoch)
        offset = step * self.batch_size
        main = self.permutation(epoch)[offset:offset + self.batch_size]
        if not self.labelled_size:
            return main
        labelled = self.labelled_indices(k).reshape(self.groups, self.labelled_size)
        return np.concatenate([main.reshape(self.groups, -1), labelled], axis=1).reshape(-1)

    def labelled_indices(self, k: int) -> np.ndarray:
        """The labelled stream's indices for global batch k, [groups * labelled_size].

        The stream runs through the labelled examples in a fresh seeded order per pass, on its
        own clock (a pass ends after len(labelled) examples, not with the main epoch), so batch k
        always gets the same examples: resuming at any position continues it exactly.
        """
        n, count = len(self.labelled), self.groups * self.labelled_size
        position, chosen = k * count, []
        while len(chosen) < count:
            lap, offset = divmod(position, n)
            order = np.random.default_rng([self.seed, 0x1ABE1, lap]).permutation(n)
            take = order[offset:offset + count - len(chosen)]
            chosen.extend(take.tolist())
            position += len(take)
        return self.labelled[np.asarray(chosen, np.int64)]

    def local_indices(self, k: int) -> np.ndarray:
        """Returns this process's contiguous slice of each sub-batch of global batch k."""
        sub = self.global_indices(k).reshape(self.groups, -1)
        return sub[:, self.local_start:self.local_start + self.local_size].reshape(-1)

    def batch(self, k: int) -> dict[str, np.ndarray]:
        """Reads this process's part of batch k from the source."""
        return self.source.get_batch(self.local_indices(k))

    def __call__(self, k: int) -> dict[str, np.ndarray]:
        """`batch(k)`, as the map of grain's dataset of batch numbers."""
        return self.batch(int(k))


PIPELINES = ('thread', 'grain')


def _prefetch_worker(plan: _BatchPlan, start: int, out: queue.Queue, stop: threading.Event):
    """Puts (k, batch) for k = start, start+1, ... into `out` until `stop` is set.

    An exception while reading is handed to the consumer as (k, exception) and ends the thread.
    """
    k = start
    while not stop.is_set():
        try:
            item = (k, plan.batch(k))
        except BaseException as e:  # pylint: disable=broad-except
            item = (k, e)
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        if isinstance(item[1], BaseException):
            return
        k += 1


class _ThreadReader:
    """The 'thread' pipeline: batches start, start+1, ... read ahead by one background thread."""

    def __init__(self, plan: _BatchPlan, start: int, prefetch: int):
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._next = start
        self.thread = threading.Thread(target=_prefetch_worker,
                                       args=(plan, start, self._queue, self._stop),
                                       name='ganjax-prefetch', daemon=True)
        self.thread.start()

    def __next__(self) -> dict[str, np.ndarray]:
        k, batch = self._queue.get()
        if isinstance(batch, BaseException):
            raise batch
        assert k == self._next, (k, self._next)
        self._next += 1
        return batch

    def close(self) -> None:
        """Signals the thread to stop, unblocks it and waits for it."""
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=10)


def _grain_reader(plan: _BatchPlan, start: int, prefetch: int, threads: int, workers: int):
    """The 'grain' pipeline: a grain iterator over this process's batches from `start` on."""
    import grain  # pylint: disable=import-outside-toplevel  (imports jax: keep it lazy)

    # Element k is this process's part of batch k; the dataset is as long as an int allows.
    batches = grain.MapDataset.range(2**62).map(plan)
    read = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch)
    if workers:
        _allow_unparsed_absl_flags()
        # Worker w reads batches start + w, start + w + workers, ...; grain hands them back in
        # order.
        iterator = iter(batches[start:].to_iter_dataset(read).mp_prefetch(
            grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=prefetch)))
    else:
        iterator = iter(batches.to_iter_dataset(read))
        # grain's checkpoint state of this iterator is the batch number itself.
        iterator.set_state({'next_index': start})
    iterator.start_prefetch()
    return iterator


def _allow_unparsed_absl_flags() -> None:
    """Marks absl flags as parsed (at their defaults) when the program never parsed them.

    grain 0.2.18's worker processes read an absl flag (--grain_enable_multiprocess_worker_
    profiling) and fail in programs that do not use absl.app (google/grain#1355, fixed after
    0.2.18); marking the flags parsed keeps every default, which is what such a program means.
    """
    from absl import flags  # pylint: disable=import-outside-toplevel  (a grain dependency)

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class BatchIterator:
    """Infinite iterator over shuffled batches of a source, deterministic in (seed, position).

    Attributes:
        source: the source read.
        batch_size: the GLOBAL batch size (summed over processes).
        local_batch_size: the rows this process gets per batch: batch_size // process_count,
            plus its share of the labelled stream.
        groups: sub-batches per global batch (each split over the processes).
        seed: the shuffling seed.
        batches_per_epoch: len(source) // batch_size (the remainder of each epoch is dropped).
        labelled_batch_size: rows of the labelled stream added to each of the `groups`
            sub-batches (0 = none).
        pipeline: 'thread' or 'grain', how batches are read ahead.
        workers: grain worker processes reading batches (0 = none).
        threads: grain threads reading batches ahead.
    """

    def __init__(self, source: Source, batch_size: int, seed: int, position: int = 0,
                 process_index: int = 0, process_count: int = 1, prefetch: int = 2,
                 groups: int = 1, pipeline: str = 'thread', workers: int = 0,
                 threads: int = 1, labelled: np.ndarray | None = None,
                 labelled_batch_size: int = 0):
        """Creates the iterator (and starts reading ahead when prefetch > 0).

        Args:
            source: a `Source`; with workers > 0 it must be picklable (it is sent to them).
            batch_size: global batch size; must be divisible by process_count.
            seed: seed of the per-epoch permutations (an integer >= 0).
            position: number of batches already consumed (to resume a run).
            process_index: index of this process among process_count.
            process_count: number of processes sharing each global batch.
            prefetch: batches read ahead in the background (0 = read on demand, in the
                caller's thread); with workers, the batches each worker process keeps ready.
            groups: the global batch is `groups` consecutive sub-batches of batch_size // groups;
                each process gets its contiguous slice of every one of them.
            pipeline: how batches are read ahead: 'thread' (one thread; fastest for in-memory
                sources) or 'grain' (grain's threads or worker processes; for sources that
                decode per example). Both give the same batches.
            workers: with pipeline='grain', worker processes reading batches in parallel
                (0 = none). They pay off when reading an example costs real work (decoding) and
                the host has cores to spare; they start in seconds (spawned, importing jax).
            threads: with pipeline='grain', threads reading batches ahead in this process (or
                in each worker); the batches still come out in order.
            labelled: indices of the labelled examples (semi-supervised training), the pool of
                the labelled stream.
            labelled_batch_size: with `labelled`, each of the `groups` sub-batches is followed
                by this many labelled examples (a stream of its own, reshuffled per pass over
                the pool); the global batch then holds
                groups * (batch_size // groups + labelled_batch_size) rows.

        Raises:
            ConfigError: for a non-positive batch size, one not divisible by process_count, a
                bad process index, negative seed, position, prefetch or workers, an unknown
                pipeline, or workers or threads asked of the 'thread' pipeline or without
                prefetch.
            DataError: if the source holds fewer examples than one global batch.
        """
        for name, value in (('batch_size', batch_size), ('seed', seed), ('position', position),
                            ('process_index', process_index), ('process_count', process_count),
                            ('prefetch', prefetch), ('groups', groups), ('workers', workers),
                            ('threads', threads), ('labelled_batch_size', labelled_batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f'BatchIterator: {name} must be an integer, got {value!r}')
        if batch_size <= 0:
            raise ConfigError(f'BatchIterator: batch_size must be > 0, got {batch_size}')
        if process_count <= 0 or not 0 <= process_index < process_count:
            raise ConfigError(f'BatchIterator: process_index {process_index} is not in '
                              f'[0, process_count={process_count})')
        if groups <= 0 or batch_size % groups:
            raise ConfigError(f'BatchIterator: groups={groups} does not divide the batch_size '
                              f'{batch_size}')
        if (batch_size // groups) % process_count:
            raise ConfigError(f'BatchIterator: the global batch_size {batch_size // groups} is '
                              f'not divisible by process_count {process_count}')
        if labelled_batch_size < 0 or (labelled_batch_size > 0) != (labelled is not None and
                                                                  len(labelled) > 0):
            raise ConfigError('BatchIterator: a labelled stream needs both labelled indices and '
                              f'labelled_batch_size > 0 (got labelled_batch_size='
                              f'{labelled_batch_size})')
        if labelled_batch_size % process_count:
            raise ConfigError(f'BatchIterator: labelled_batch_size {labelled_batch_size} is not '
                              f'divisible by process_count {process_count}')
        if seed < 0 or position < 0 or prefetch < 0 or workers < 0:
            raise ConfigError(f'BatchIterator: seed, position, prefetch and workers must be '
                              f'>= 0, got {seed}, {position}, {prefetch}, {workers}')
        if threads <= 0:
            raise ConfigError(f'BatchIterator: threads must be > 0, got {threads}')
        if pipeline not in PIPELINES:
            raise ConfigError(f'BatchIterator: pipeline must be one of {PIPELINES}, got '
                              f'{pipeline!r}')
        if pipeline == 'thread' and (workers or threads != 1):
            raise ConfigError(f"BatchIterator: workers={workers} and threads={threads} need "
                              f"pipeline='grain' (the 'thread' pipeline is one thread)")
        if workers and not prefetch:
            raise ConfigError(f'BatchIterator: workers={workers} need prefetch > 0 (each worker '
                              'reads ahead)')
        length = len(source)
        if length < batch_size:
            raise DataError(f'{getattr(source, "description", source)}: {length} examples are '
                            f'fewer than one batch of {batch_size}; lower data.batch_size')
        self.source = source
        self.batch_size = int(batch_size)
        self.local_batch_size = (int(batch_size) + int(groups) * int(labelled_batch_size)) \
            // int(process_count)
        self.seed = int(seed)
        self.groups = int(groups)
        self.pipeline = pipeline
        self.workers = int(workers)
        self.threads = int(threads)
        self.batches_per_epoch = length // self.batch_size
        self.labelled_batch_size = int(labelled_batch_size)
        self._plan = _BatchPlan(source, self.batch_size, self.seed, int(process_index),
                                int(process_count), self.groups,
                                labelled if labelled_batch_size else None,
                                self.labelled_batch_size)
        self._position = int(position)
        self._prefetch = int(prefetch)
        self._closed = False
        self._reader = None
        if self._prefetch and self.pipeline == 'thread':
            self._reader = _ThreadReader(self._plan, self._position, self._prefetch)
        elif self._prefetch:
            self._reader = _grain_reader(self._plan, self._position, self._prefetch,
                                           self.threads, self.workers)
        if self._reader is not None:
            # Stop the thread(s) or worker processes when the iterator is dropped unclosed.
            self._finalizer = weakref.finalize(self, self._reader.close)

    @property
    def position(self) -> int:
        """Number of batches returned so far (counting from the start of the run)."""
        return self._position

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self._position // self.batches_per_epoch

    def indices_at(self, k: int) -> np.ndarray:
        """Returns the source indices of this process's part of batch k (no side effects)."""
        return self._plan.local_indices(k)

    def next_global_indices(self) -> np.ndarray:
        """Returns the source indices of the whole next global batch and moves past it.

        For data held on the devices, where only indices travel; needs prefetch=0.
        """
        if self._reader is not None:
            raise RuntimeError('next_global_indices needs a BatchIterator with prefetch=0')
        indices = self._plan.global_indices(self._position)
        self._position += 1
        return indices

    def batch_at(self, k: int) -> dict[str, np.ndarray]:
        """Reads this process's part of batch k without moving the position."""
        return self._plan.batch(k)

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        """Returns the next batch {'x': [local_batch_size, ...], 'label': int32 [...]}."""
        if self._closed:
            raise RuntimeError('BatchIterator is closed')
        if self._reader is None:
            batch = self._plan.batch(self._position)
        else:
            try:
                batch = next(self._reader)
            except Exception:
                self.close()
                raise
        self._position += 1
        return batch

    def close(self) -> None:
        """Stops reading ahead (thread(s) or worker processes); the iterator is then unusable."""
        self._closed = True
        if self._reader is not None:
            self._reader = None
            self._finalizer()

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f'BatchIterator(batch_size={self.batch_size}, seed={self.seed}, '
                f'position={self._position}, batches_per_epoch={self.batches_per_epoch}, '
                f'pipeline={self.pipeline!r})')
