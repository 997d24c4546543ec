"""Throughput of a population in one program against the same members trained one after another.

For each model (the 8-Gaussian ring MLP of configs/mlp_ring8.py, the MNIST DCGAN of
configs/dcgan_mnist.py) and each population size K:

* **population**: `ganjax sweep` of K seeds (one vmapped program), end to end: setup, compile,
  training, the final samples and checkpoint;
* **sequential**: the same K members, each trained by `ganjax train`'s library call
  (`train_and_evaluate`) one after another in this process, end to end likewise. JAX's persistent
  compilation cache is on for both, as `ganjax train` has it by default, so after the first run a
  sequential run loads its program from the cache instead of compiling it (that is what K
  back-to-back `ganjax train` commands get; say `--no-cache` to compile every time). The cache
  is a new folder for each invocation of this script, so the first sequential run compiles, and
  each population size compiles its own program.

Both sides report real examples per second over the whole wall time (K x steps x batch x
n_critic / seconds) and the steady-state rate of the training calls alone. A second table answers
how loss variants should share a program: K members over 4 losses in one program (the loss chosen
per member by `lax.switch` on `hparams['loss_index']`, which vmap turns into computing every loss
and selecting) against 4 programs of K/4 members with one loss each.

    python benchmarks/population.py                          # ring K=1,4,16,64; MNIST K=1,4,16
    python benchmarks/population.py --models ring --sizes 1,4 --steps 50   # a quick look
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import config as config_lib  # noqa: E402
from ganjax import summaries  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: model -> (config file, default steps, default sizes).
MODELS = {
    'ring': ('configs/mlp_ring8.py', 200, (1, 4, 16, 64)),
    'mnist': ('configs/dcgan_mnist.py', 30, (1, 4, 16)),
}
LOSSES = ('non_saturating', 'hinge', 'least_squares', 'minimax')


def _config(model: str, steps: int, cache: bool):
    config = config_lib.load_config_file(os.path.join(ROOT, MODELS[model][0]))
    config.train.num_steps = steps
    k = min(config.train.steps_per_call, steps)
    config.train.steps_per_call = k
    # Two log windows: the first holds the compiling call, the second the steady-state rate.
    config.train.log_every = max(k, steps // 2 // k * k)
    config.train.sample_every = steps
    config.train.checkpoint_every = steps
    config.train.progress = False
    config.train.compilation_cache = cache
    config.eval.every = 0
    return config


def _steady_rate(workdirs) -> float:
    """Member-steps per second of the training calls (the logged steps_per_sec, summed)."""
    total = 0.0
    for w in workdirs:
        rows = summaries.read_jsonl(os.path.join(w, 'metrics.jsonl'))
        rates = [r['steps_per_sec'] for r in rows if 'steps_per_sec' in r]
        total += rates[-1] if rates else float('nan')
    return total


def run_population(model: str, k: int, steps: int, cache: bool, tmp: str,
                   members_per_pass: int = 0) -> dict:
    from ganjax import population
    config = _config(model, steps, cache)
    config.sweep.seeds = tuple(range(k))
    config.sweep.members_per_pass = members_per_pass
    workdir = os.path.join(tmp, f'pop_{model}_{k}')
    t0 = time.perf_counter()
    population.train_sweep(config, workdir)
    seconds = time.perf_counter() - t0
    # Members of one program share its rate: one member's steps/s times K.
    rate = _steady_rate([os.path.join(workdir, 'members', '000')]) * k
    shutil.rmtree(workdir)
    return {'seconds': seconds, 'steady_member_steps_per_sec': rate}


def run_sequential(model: str, k: int, steps: int, cache: bool, tmp: str) -> dict:
    from ganjax import train as train_lib
    t0 = time.perf_counter()
    workdirs = []
    for seed in range(k):
        config = _config(model, steps, cache)
        config.seed = seed
        workdir = os.path.join(tmp, f'seq_{model}_{k}_{seed}')
        train_lib.train_and_evaluate(config, workdir)
        workdirs.append(workdir)
    seconds = time.perf_counter() - t0
    rate = _steady_rate(workdirs) / k  # the mean rate of one run alone
    for w in workdirs:
        shutil.rmtree(w)
    return {'seconds': seconds, 'steady_member_steps_per_sec': rate}


def loss_sharing(model: str, k: int, steps: int) -> dict:
    """Compile and steady-state time of K members over 4 losses: one program vs 4 programs."""
    import jax
    from ganjax import compose, data, parallel
    from ganjax.train_step import build_gan

    config = _config(model, steps, cache=False)
    config.parallel.num_devices = 1
    source = data.build_source(config.data, 'train')
    par = parallel.Parallel(config, population=True)
    dataset = par.put_dataset({'x': source.get_batch(np.arange(min(len(source), 8192)))['x']})
    n = min(len(source), 8192)
    calls = max(1, steps // config.train.steps_per_call)
    spc = config.train.steps_per_call

    def time_program(names, members):
        configs = []
        for i in range(members):
            c = _config(model, steps, cache=False)
            c.parallel.num_devices = 1
            c.seed, c.loss.name = i, names[i % len(names)]
            configs.append(c)
        gan = build_gan(configs[0], tuple(source.data_shape), loss_names=tuple(names),
                        scaling=source.scaling)
        fn = compose.compile_step(configs[0], gan, par, steps_per_call=spc, on_device=True,
                                  population=True)
        state = compose.init_population(gan, par, configs)
        rng = np.random.default_rng(0)
        shape = ((spc,) if spc > 1 else ()) + (members, config.train.n_critic,
                                                config.data.batch_size)
        idx = par.put_indices(rng.integers(0, n, size=shape).astype(np.int32),
                              member_axis=1 if spc > 1 else 0)
        t0 = time.perf_counter()
        state, _ = fn(state, dataset, idx)
        jax.block_until_ready(state)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(calls):
            state, _ = fn(state, dataset, idx)
        jax.block_until_ready(state)
        return first, time.perf_counter() - t0

    one_first, one_steady = time_program(LOSSES, k)
    parts = [time_program((name,), k // len(LOSSES)) for name in LOSSES]
    return {'members': k, 'losses': list(LOSSES), 'steps': calls * spc,
            'one_program': {'first_call_seconds': one_first, 'steady_seconds': one_steady},
            'separate_programs': {'first_call_seconds': sum(p[0] for p in parts),
                                  'steady_seconds': sum(p[1] for p in parts)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default=','.join(MODELS))
    p.add_argument('--sizes', default='', help='population sizes (default: per model)')
    p.add_argument('--steps', type=int, default=0, help='steps per member (default: per model)')
    p.add_argument('--no-cache', dest='cache', action='store_false',
                   help='compile every run (no persistent compilation cache)')
    p.add_argument('--members_per_pass', type=int, default=0,
                   help="the population's sweep.members_per_pass (0: vmap all members)")
    p.add_argument('--sharing_size', type=int, default=16,
                   help='members of the loss-sharing comparison (0 = skip it)')
    p.add_argument('--out', default='')
    args = p.parse_args(argv)
    rows, sharing = [], {}
    with tempfile.TemporaryDirectory(prefix='ganjax_population_') as tmp:
        # A cache of this run's own (train.enable_compilation_cache reads it at every run).
        os.environ['GANJAX_CACHE_DIR'] = os.path.join(tmp, 'xla_cache')
        for model in [m for m in args.models.split(',') if m]:
            if model not in MODELS:
                p.error(f'--models: {model!r} is not one of {sorted(MODELS)}')
            _, default_steps, default_sizes = MODELS[model]
            steps = args.steps or default_steps
            sizes = tuple(int(s) for s in args.sizes.split(',')) if args.sizes else default_sizes
            config = _config(model, steps, args.cache)
            per_step = config.data.batch_size * config.train.n_critic
            for k in sizes:
                seq = run_sequential(model, k, steps, args.cache, tmp)
                pop = run_population(model, k, steps, args.cache, tmp, args.members_per_pass)
                examples = k * steps * per_step
                row = {'model': model, 'members': k, 'steps': steps,
                       'batch': config.data.batch_size, 'population': pop, 'sequential': seq,
                       'population_examples_per_sec': examples / pop['seconds'],
                       'sequential_examples_per_sec': examples / seq['seconds'],
                       'speedup_end_to_end': seq['seconds'] / pop['seconds'],
                       'speedup_steady': (pop['steady_member_steps_per_sec'] /
                                          seq['steady_member_steps_per_sec'])}
                rows.append(row)
                print(f"{model:6s} K={k:3d}: population {pop['seconds']:7.1f} s "
                      f"({row['population_examples_per_sec']:9.0f} ex/s), sequential "
                      f"{seq['seconds']:7.1f} s ({row['sequential_examples_per_sec']:9.0f} ex/s): "
                      f"{row['speedup_end_to_end']:.2f}x end to end, "
                      f"{row['speedup_steady']:.2f}x steady state", flush=True)
            if args.sharing_size >= len(LOSSES):
                sharing[model] = loss_sharing(model, args.sharing_size, steps)
                s = sharing[model]
                print(f"{model:6s} {args.sharing_size} members over {len(LOSSES)} losses: one "
                      f"program {s['one_program']['first_call_seconds']:.1f} s first call + "
                      f"{s['one_program']['steady_seconds']:.2f} s for {s['steps']} steps; "
                      f"{len(LOSSES)} programs {s['separate_programs']['first_call_seconds']:.1f}"
                      f" s + {s['separate_programs']['steady_seconds']:.2f} s", flush=True)
    record = {'benchmark': 'population', 'rows': rows, 'loss_sharing': sharing,
              'members_per_pass': args.members_per_pass,
              'compilation_cache': args.cache,
              'command': 'python benchmarks/population.py ' + ' '.join(argv or sys.argv[1:]),
              **common.environment()}
    path = common.write_result(record, args.out, 'population')
    print(f'-> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
