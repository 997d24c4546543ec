"""An infinite, shuffled, seeded, epoch-aware batch iterator whose whole state is one integer.

Batch k is a pure function of (seed, k): epoch e = k // batches_per_epoch reads the permutation
np.random.default_rng([seed, e]).permutation(len(source)) in consecutive slices of batch_size
(the remainder of each epoch is dropped). So a run resumed at position k sees exactly the
batches an uninterrupted run would, and every process computes the same global batch and keeps
its own contiguous slice of it, with no communication. A global batch may be made of `groups`
sub-batches (e.g. the n_critic batches of one training step); each process then keeps its slice of
every sub-batch, so that each sub-batch is split over the processes like the devices split it.

grain runs the reading: the batches are the elements of a `grain.MapDataset` (element k = this
process's part of batch k), read ahead by grain's prefetch threads or worker processes, and
grain's checkpoint state of the iterator is the position itself (`next_index`). The indices are
NOT drawn with grain's own `shuffle`: grain permutes one index per Python call (its index
shuffle), which measured 12-40 us per index on this CPU, 2-4 ms per batch of 64, capping an
in-memory source at ~4k examples/s where one numpy permutation per epoch costs ~0.1 ms in all
(benchmarks/input_pipeline.py, benchmarks/README.md).

grain imports jax, so it is imported when an iterator starts reading ahead, not with this module:
the data package stays importable without jax.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import Any

import numpy as np

from ganjax.data.source import Source
from ganjax.errors import ConfigError, DataError


class _BatchPlan:
    """The pure part of the iterator: which indices batch k holds, and reading them.

    Kept apart from `BatchIterator` and picklable, so grain can hand it to its reading threads
    and send it to worker processes.
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
                # Two epochs suffice: the reading threads run a few batches ahead at most.
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

    def __call__(self, k: int) -> dict[str, np.ndarray]:
        """`batch(k)`, as the map of grain's dataset of batch numbers."""
        return self.batch(int(k))


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
        local_batch_size: batch_size // process_count, the rows this process gets.
        groups: sub-batches per global batch (each split over the processes).
        seed: the shuffling seed.
        batches_per_epoch: len(source) // batch_size (the remainder of each epoch is dropped).
        workers: worker processes reading batches (0 = threads in this process).
    """

    def __init__(self, source: Source, batch_size: int, seed: int, position: int = 0,
                 process_index: int = 0, process_count: int = 1, prefetch: int = 2,
                 groups: int = 1, workers: int = 0, threads: int = 1):
        """Creates the iterator (and starts reading ahead when prefetch > 0).

        Args:
            source: a `Source`; with workers > 0 it must be picklable (it is sent to them).
            batch_size: global batch size; must be divisible by process_count.
            seed: seed of the per-epoch permutations (an integer >= 0).
            position: number of batches already consumed (to resume a run).
            process_index: index of this process among process_count.
            process_count: number of processes sharing each global batch.
            prefetch: batches read ahead by grain in background threads (0 = read on demand); with
                workers, the batches each worker process keeps ready.
            groups: the global batch is `groups` consecutive sub-batches of batch_size // groups;
                each process gets its contiguous slice of every one of them.
            workers: grain worker processes reading batches in parallel (0 = none). They pay
                off when reading an example costs real work (decoding files); an in-memory
                source is faster without them.
            threads: threads reading batches ahead in this process (or in each worker); the
                batches still come out in order.

        Raises:
            ConfigError: for a non-positive batch size, one not divisible by process_count, a
                bad process index, negative seed, position, prefetch or workers, or workers
                without prefetch.
            DataError: if the source holds fewer examples than one global batch.
        """
        for name, value in (('batch_size', batch_size), ('seed', seed), ('position', position),
                            ('process_index', process_index), ('process_count', process_count),
                            ('prefetch', prefetch), ('groups', groups), ('workers', workers),
                            ('threads', threads)):
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
        if seed < 0 or position < 0 or prefetch < 0 or workers < 0:
            raise ConfigError(f'BatchIterator: seed, position, prefetch and workers must be '
                              f'>= 0, got {seed}, {position}, {prefetch}, {workers}')
        if threads <= 0:
            raise ConfigError(f'BatchIterator: threads must be > 0, got {threads}')
        if workers and not prefetch:
            raise ConfigError(f'BatchIterator: workers={workers} need prefetch > 0 (each worker '
                              'reads ahead)')
        length = len(source)
        if length < batch_size:
            raise DataError(f'{getattr(source, "description", source)}: {length} examples are '
                            f'fewer than one batch of {batch_size}; lower data.batch_size')
        self.source = source
        self.batch_size = int(batch_size)
        self.local_batch_size = int(batch_size) // int(process_count)
        self.seed = int(seed)
        self.groups = int(groups)
        self.workers = int(workers)
        self.threads = int(threads)
        self.batches_per_epoch = length // self.batch_size
        self._plan = _BatchPlan(source, self.batch_size, self.seed, int(process_index),
                                int(process_count), self.groups)
        self._position = int(position)
        self._prefetch = int(prefetch)
        self._closed = False
        self._iterator = None
        if self._prefetch:
            self._iterator = self._start(self._position)
            # Stop grain's threads or workers when the iterator is dropped without close().
            self._finalizer = weakref.finalize(self, self._iterator.close)

    def _start(self, position: int):
        """Starts a grain iterator reading this process's batches from `position` on."""
        import grain  # pylint: disable=import-outside-toplevel  (imports jax: keep it lazy)

        # Element k is this process's part of batch k; the dataset is as long as an int allows.
        batches = grain.MapDataset.range(2**62).map(self._plan)
        read = grain.ReadOptions(num_threads=self.threads, prefetch_buffer_size=self._prefetch)
        if self.workers:
            _allow_unparsed_absl_flags()
            # Worker w reads batches position + w, position + w + workers, ...; grain hands them
            # back in order.
            dataset = batches[position:].to_iter_dataset(read).mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.workers,
                                             per_worker_buffer_size=self._prefetch))
            iterator = iter(dataset)
        else:
            iterator = iter(batches.to_iter_dataset(read))
            # grain's checkpoint state of this iterator is the batch number itself.
            iterator.set_state({'next_index': position})
        iterator.start_prefetch()
        return iterator

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
        if self._iterator is not None:
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
        if self._iterator is None:
            batch = self._plan.batch(self._position)
        else:
            try:
                batch = next(self._iterator)
            except Exception:
                self.close()
                raise
        self._position += 1
        return batch

    def close(self) -> None:
        """Stops reading ahead (threads or worker processes); the iterator is then unusable."""
        self._closed = True
        if self._iterator is not None:
            self._iterator = None
            self._finalizer()

    def __enter__(self) -> BatchIterator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f'BatchIterator(batch_size={self.batch_size}, seed={self.seed}, '
                f'position={self._position}, batches_per_epoch={self.batches_per_epoch})')
