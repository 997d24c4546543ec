"""An infinite, shuffled, seeded, epoch-aware batch iterator whose whole state is one integer.

Batch k is a pure function of (seed, k): epoch e = k // batches_per_epoch reads the permutation
np.random.default_rng([seed, e]).permutation(len(source)) in consecutive slices of batch_size
(the remainder of each epoch is dropped). So a run resumed at position k sees exactly the
batches an uninterrupted run would, and every process computes the same global batch and keeps
its own contiguous slice of it, with no communication. A global batch may be made of `groups`
sub-batches (e.g. the n_critic batches of one training step); each process then keeps its slice of
every sub-batch, so that each sub-batch is split over the processes like the devices split it.
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

    Kept apart from `BatchIterator` so the prefetch thread holds no reference to the iterator,
    which can then be garbage-collected (and its thread stopped) when dropped.
    """

    def __init__(self, source: Source, batch_size: int, seed: int, process_index: int,
                 process_count: int, groups: int = 1):
        self.source = source
        self.groups = groups
        self.batch_size = batch_size
        self.seed = seed
        self.length = len(source)
        self.batches_per_epoch = self.length // batch_size
        self.local_size = batch_size // groups // process_count
        self.local_start = process_index * self.local_size
        self._perms: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def permutation(self, epoch: int) -> np.ndarray:
        """Returns the (cached) shuffled order of epoch `epoch`."""
        with self._lock:
            perm = self._perms.get(epoch)
            if perm is None:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.length)
                self._perms[epoch] = perm
                # Two epochs suffice: the consumer and the prefetcher are at most one apart.
                while len(self._perms) > 2:
                    self._perms.popitem(last=False)
            return perm

    def global_indices(self, k: int) -> np.ndarray:
        """Returns the source indices of global batch k, shape [batch_size]."""
        epoch, step = divmod(k, self.batches_per_epoch)
        offset = step * self.batch_size
        return self.permutation(epoch)[offset:offset + self.batch_size]

    def local_indices(self, k: int) -> np.ndarray:
        """Returns this process's contiguous slice of each sub-batch of global batch k."""
        sub = self.global_indices(k).reshape(self.groups, -1)
        return sub[:, self.local_start:self.local_start + self.local_size].reshape(-1)

    def batch(self, k: int) -> dict[str, np.ndarray]:
        """Reads this process's part of batch k from the source."""
        return self.source.get_batch(self.local_indices(k))


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


class BatchIterator:
    """Infinite iterator over shuffled batches of a source, deterministic in (seed, position).

    Attributes:
        source: the source read.
        batch_size: the GLOBAL batch size (summed over processes).
        local_batch_size: batch_size // process_count, the rows this process gets.
        groups: sub-batches per global batch (each split over the processes).
        seed: the shuffling seed.
        batches_per_epoch: len(source) // batch_size (the remainder of each epoch is dropped).
    """

    def __init__(self, source: Source, batch_size: int, seed: int, position: int = 0,
                 process_index: int = 0, process_count: int = 1, prefetch: int = 2,
                 groups: int = 1):
        """Creates the iterator (and its prefetch thread when prefetch > 0).

        Args:
            source: a `Source`.
            batch_size: global batch size; must be divisible by process_count.
            seed: seed of the per-epoch permutations (an integer >= 0).
            position: number of batches already consumed (to resume a run).
            process_index: index of this process among process_count.
            process_count: number of processes sharing each global batch.
            prefetch: batches prepared ahead in a background thread (0 = read on demand).
            groups: the global batch is `groups` consecutive sub-batches of batch_size // groups;
                each process gets its contiguous slice of every one of them.

        Raises:
            ConfigError: for a non-positive batch size, one not divisible by process_count, a
                bad process index, negative seed, position or prefetch.
            DataError: if the source holds fewer examples than one global batch.
        """
        for name, value in (('batch_size', batch_size), ('seed', seed), ('position', position),
                            ('process_index', process_index), ('process_count', process_count),
                            ('prefetch', prefetch), ('groups', groups)):
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
        if seed < 0 or position < 0 or prefetch < 0:
            raise ConfigError(f'BatchIterator: seed, position and prefetch must be >= 0, got '
                              f'{seed}, {position}, {prefetch}')
        length = len(source)
        if length < batch_size:
            raise DataError(f'{getattr(source, "description", source)}: {length} examples are '
                            f'fewer than one batch of {batch_size}; lower data.batch_size')
        self.source = source
        self.batch_size = int(batch_size)
        self.local_batch_size = int(batch_size) // int(process_count)
        self.seed = int(seed)
        self.groups = int(groups)
        self._plan = _BatchPlan(source, self.batch_size, self.seed, int(process_index),
                                int(process_count), self.groups)
        self.batches_per_epoch = self._plan.batches_per_epoch
        self._position = int(position)
        self._prefetch = int(prefetch)
        self._queue: queue.Queue | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        if self._prefetch:
            self._queue = queue.Queue(maxsize=self._prefetch)
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=_prefetch_worker, args=(self._plan, self._position, self._queue,
                                               self._stop),
                name='ganjax-prefetch', daemon=True)
            self._thread.start()
            # Stop the thread when the iterator is garbage-collected without close().
            self._finalizer = weakref.finalize(self, _shutdown, self._stop, self._queue,
                                               self._thread)

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
        if self._queue is not None:
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
        if self._queue is None:
            if self._stop is not None:
                raise RuntimeError('BatchIterator is closed')
            batch = self._plan.batch(self._position)
        else:
            k, batch = self._queue.get()
            if isinstance(batch, BaseException):
                self.close()
                raise batch
            assert k == self._position, (k, self._position)
        self._position += 1
        return batch

    def close(self) -> None:
        """Stops the prefetch thread; the iterator cannot be used afterwards when it had one."""
        if self._thread is not None:
            self._finalizer()
            self._thread = None
            self._queue = None

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f'BatchIterator(batch_size={self.batch_size}, seed={self.seed}, '
                f'position={self._position}, batches_per_epoch={self.batches_per_epoch})')


def _shutdown(stop: threading.Event, q: queue.Queue, thread: threading.Thread) -> None:
    """Signals the prefetch thread to stop, unblocks it and waits for it."""
    stop.set()
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
    if thread is not threading.current_thread():
        thread.join(timeout=10)
