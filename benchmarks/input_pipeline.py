"""Host input pipeline throughput (examples/s): the thread iterator before grain against grain.

Writes a folder of small PNG and JPEG images (sizes around the target, so every one is resized)
to a temporary directory, then times batches coming out of each pipeline with nothing else to do
(the consumer only takes the batch), after a warm-up, over two sources:

* `image_folder`: ganjax's own source, which decodes the whole folder into memory once; a batch
  is then a gather of uint8 arrays, the cost every host-fed run pays today;
* `decode`: the same files decoded and resized per example at read time (ganjax's decoder), the
  cost of a source that streams encoded images (a large tfds or image set), where reading in
  parallel threads or worker processes matters.

Pipelines: `thread (before)` is the BatchIterator of commit BASELINE_COMMIT (one prefetch
thread), loaded from git; `thread (now, default)` is today's BatchIterator(pipeline='thread');
`grain, ...` is today's BatchIterator(pipeline='grain') with 1 or 2 reading threads and with 1 or
2 worker processes (--threads, --workers); `grain shuffle (not kept)` draws the indices with
grain's own shuffle too (the design tried first). The warm-up batches of every pipeline but the
last are checked equal to a synchronous read (prefetch=0) of the baseline: same batches.
Examples/s is wall-clock and moves with the load of a shared machine; CPU us/example (this
process, all threads) is the work each pipeline does and moves much less.

    python benchmarks/input_pipeline.py --images 2048 --batches 300 --decode_batches 25 --repeats 5

Writes benchmarks/results/input_pipeline_<cpu>.json (or --out) with the CPU model from
/proc/cpuinfo, the core count and the numpy, PIL, grain and python versions.
"""

import argparse
import datetime
import functools
import importlib.util
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import grain  # Imported up front (it imports jax): start-up times then exclude the import.
import numpy as np
import PIL
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (benchmarks/common.py, beside this script)
import machine  # noqa: E402  (benchmarks/machine.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ganjax.data import image_folder  # noqa: E402
from ganjax.data.iterator import BatchIterator  # noqa: E402
from ganjax.data.source import check_indices  # noqa: E402

#: The last commit with the hand-written thread iterator (before grain).
BASELINE_COMMIT = '044ae23'
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


class DecodingSource:
    """A source that decodes and resizes each example's file when it is read.

    Picklable (it holds only paths), so grain can send it to worker processes.
    """

    def __init__(self, paths: list[str], image_size: int, channels: int):
        """Args: the image files, the square size and the channel count to produce."""
        self.paths = list(paths)
        self.image_size = image_size
        self.channels = channels
        self.data_shape = (image_size, image_size, channels)
        self.dtype = np.dtype(np.uint8)
        self.num_classes = 0
        self.description = f'decode-per-example: {len(paths)} files'

    def __len__(self) -> int:
        return len(self.paths)

    def get_batch(self, indices) -> dict:
        """Decodes the files at `indices`: {'x': uint8 [n, s, s, c], 'label': int32 [n]}."""
        idx = check_indices(indices, len(self.paths))
        decode = image_folder._decode  # pylint: disable=protected-access  (ganjax's decoder)
        x = np.stack([decode(self.paths[i], self.image_size, self.channels) for i in idx])
        return {'x': x, 'label': np.full(len(idx), -1, np.int32)}


def write_images(root: str, count: int, size: int, seed: int = 0) -> list[str]:
    """Writes `count` random RGB images, alternately PNG and JPEG, of sizes size..1.5*size."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        h, w = rng.integers(size, size * 3 // 2 + 1, size=2)
        # Smooth random pictures (low-resolution noise, upscaled) compress like photos do.
        small = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((int(w), int(h)), Image.BILINEAR)
        path = os.path.join(root, f'{i:05d}.{"png" if i % 2 == 0 else "jpg"}')
        img.save(path, quality=90) if path.endswith('.jpg') else img.save(path)
        paths.append(path)
    return paths


class GrainShuffleIterator:
    """The pipeline with grain's own index shuffle and sharding (tried first, not kept).

    grain.MapDataset.range(n).shuffle(seed)[:drop remainder].batch(batch_size).repeat(),
    then a read of each batch, read ahead by one grain thread: the batches grain would draw if it
    drew the indices too (another order than BatchIterator's).
    """

    def __init__(self, source, batch_size: int, seed: int, prefetch: int):
        """Args: as BatchIterator (one process, one group)."""
        per_epoch = len(source) // batch_size * batch_size
        order = grain.MapDataset.range(len(source)).shuffle(seed=seed)[:per_epoch]
        batches = order.batch(batch_size).repeat().map(
            lambda idx: source.get_batch(np.asarray(idx)))
        self._it = iter(batches.to_iter_dataset(
            grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch)))

    def __next__(self) -> dict:
        return next(self._it)

    def close(self) -> None:
        """Stops grain's reading thread."""
        self._it.close()


def load_baseline(commit: str):
    """Imports the BatchIterator class of ganjax/data/iterator.py at `commit` (from git)."""
    text = subprocess.run(['git', '-C', ROOT, 'show', f'{commit}:ganjax/data/iterator.py'],
                          check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f'iterator_{commit}', loader=None)
    module = importlib.util.module_from_spec(spec)
    code = compile(text, f'{commit}:ganjax/data/iterator.py', 'exec')
    exec(code, module.__dict__)  # pylint: disable=exec-used  (the old module, from git)
    return module.BatchIterator


def measure(make, warmup: int, batches: int, batch_size: int) -> dict:
    """Times one fresh iterator from `make()`.

    Returns:
        {'rate': examples/s over `batches` batches taken after `warmup` ones, 'cpu_us': CPU
        microseconds of this process (all its threads; not worker processes) per example over
        the same batches, 'startup': seconds to build the iterator and take the warm-up batches
        (worker processes start in it), 'first': the warm-up batches' 'x'}.
    """
    t0 = time.perf_counter()
    it = make()
    try:
        first = [next(it)['x'] for _ in range(warmup)]
        startup = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            next(it)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {'rate': batches * batch_size / wall, 'cpu_us': cpu / (batches * batch_size) * 1e6,
                'startup': startup, 'first': first}
    finally:
        it.close()


def versions() -> dict:
    """Versions of python, numpy, PIL and grain."""
    return {'python': platform.python_version(), 'numpy': np.__version__,
            'pillow': PIL.__version__, 'grain': grain.__version__}


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(',') if t]


def grain_iterator(source, batch: int, prefetch: int, threads: int = 1,
                   workers: int = 0) -> BatchIterator:
    """The BatchIterator over `source` (seed 0) reading ahead with grain."""
    return BatchIterator(source, batch, seed=0, prefetch=prefetch, pipeline='grain',
                         threads=threads, workers=workers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=2048, help='image files written')
    parser.add_argument('--size', type=int, default=64, help='square size decoded to')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--batches', type=int, default=300,
                        help='timed batches per repeat, in-memory source')
    parser.add_argument('--decode_batches', type=int, default=25,
                        help='timed batches per repeat, decoding source')
    parser.add_argument('--threads', type=_ints, default=[1, 2],
                        help='reading threads of the grain pipelines, comma-separated')
    parser.add_argument('--workers', type=_ints, default=[1, 2],
                        help='worker processes of the grain pipelines, comma-separated')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--prefetch', type=int, default=2)
    parser.add_argument('--baseline_commit', default=BASELINE_COMMIT)
    parser.add_argument('--out', default='')
    args = parser.parse_args()

    thread_iterator = load_baseline(args.baseline_commit)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as root:
        paths = write_images(root, args.images, args.size)
        sources = {
            'image_folder': image_folder.build_image_folder(
                {'path': root, 'image_size': args.size, 'channels': 3, 'eval_fraction': 0.0},
                'train'),
            'decode': DecodingSource(sorted(paths), args.size, 3),
        }
        pipelines = {'thread (before)': lambda s: thread_iterator(s, args.batch, seed=0,
                                                                 prefetch=args.prefetch)}
        pipelines['thread (now, default)'] = functools.partial(
            BatchIterator, batch_size=args.batch, seed=0, prefetch=args.prefetch)
        pipelines['grain shuffle (not kept)'] = lambda s: GrainShuffleIterator(
            s, args.batch, seed=0, prefetch=args.prefetch)
        for n in args.threads:
            pipelines[f'grain, {n} thread{"s" * (n > 1)}'] = functools.partial(
                grain_iterator, batch=args.batch, prefetch=args.prefetch, threads=n)
        for n in args.workers:
            pipelines[f'grain, {n} worker process{"es" * (n > 1)}'] = functools.partial(
                grain_iterator, batch=args.batch, prefetch=args.prefetch, workers=n)
        # Repeats go round all pipelines in turn, so that a change in the load of the (shared)
        # machine falls on every pipeline alike.
        runs = {(s, p): [] for s in sources for p in pipelines}
        for repeat in range(args.repeats):
            for source_name, source in sources.items():
                timed = args.batches if source_name == 'image_folder' else args.decode_batches
                sync = None
                for name, make in pipelines.items():
                    m = measure(functools.partial(make, source), args.warmup, timed, args.batch)
                    # Every pipeline gives the batches of the thread baseline read synchronously.
                    sync = sync or [b['x'] for b in itertools.islice(
                        thread_iterator(source, args.batch, seed=0, prefetch=0), args.warmup)]
                    # (grain's own shuffle draws another order: it is left out of this check.)
                    for got, want in zip(m['first'] if 'not kept' not in name else [], sync):
                        np.testing.assert_array_equal(got, want)
                    runs[source_name, name].append(m)
                    print(f'repeat {repeat}: {source_name:13s} {name:27s} {m["rate"]:10,.0f} '
                          f'examples/s, {m["cpu_us"]:8.1f} CPU us/example (start-up + warm-up '
                          f'{m["startup"]:.2f} s)', flush=True)
        rows = []
        for (source_name, name), values in runs.items():
            rates = [v['rate'] for v in values]
            rows.append({'source': source_name, 'pipeline': name,
                         'examples_per_s': statistics.median(rates), 'min': min(rates),
                         'max': max(rates),
                         # Worker processes' CPU time is not this process's: not comparable.
                         'cpu_us_per_example': None if 'worker' in name else
                         statistics.median(v['cpu_us'] for v in values),
                         'startup_and_warmup_s': statistics.median(v['startup'] for v in values)})

    for source_name in sources:
        base = next(r['examples_per_s'] for r in rows
                    if r['source'] == source_name and r['pipeline'].startswith('thread'))
        for r in rows:
            if r['source'] == source_name:
                r['vs_thread'] = r['examples_per_s'] / base
    print('\n| source | pipeline | examples/s (median) | min - max | vs thread | '
          'CPU us/example | start-up s |\n| --- | --- | --- | --- | --- | --- | --- |')
    for r in rows:
        cpu = '' if r['cpu_us_per_example'] is None else f'{r["cpu_us_per_example"]:.1f}'
        print(f'| {r["source"]} | {r["pipeline"]} | {r["examples_per_s"]:,.0f} | '
              f'{r["min"]:,.0f} - {r["max"]:,.0f} | {r["vs_thread"]:.2f}x | {cpu} | '
              f'{r["startup_and_warmup_s"]:.1f} |')
    record = {
        'benchmark': 'input_pipeline', **machine.cpu_info(),
        'platform': platform.platform(), 'versions': versions(),
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'settings': {k: v for k, v in vars(args).items() if k != 'out'},
        'command': 'python benchmarks/input_pipeline.py ' + ' '.join(sys.argv[1:]),
        # The machine may be shared: its 1-minute load average before and after the runs.
        'load_average_1min': [load_before[0], os.getloadavg()[0]],
        'rows': rows,
    }
    out = args.out or os.path.join(
        RESULTS_DIR, f'input_pipeline_{common.cpu_model().replace(" ", "_").replace("/", "_")}.json')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=2)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
