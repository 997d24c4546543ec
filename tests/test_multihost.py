"""Two processes on localhost, joined by jax.distributed (CPU collectives over gloo), each with 2
simulated devices, train the same run as one process with 4 devices.

Each process loads only its half of every critic batch, the step runs as one program over the 4
devices of both processes, orbax writes each checkpoint once, and one process writes the run's
files. The result must match the one-process run to float32 rounding, and so must the evaluations
during training (features gathered from both processes, history and best checkpoint written once).
"""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import run_dir, summaries
from ganjax import train as train_lib
from util import ROOT

STEPS = 3


CONFIG = os.path.join(ROOT, 'configs', 'dcgan_mnist.py')
ARGS = ['--config.model.latent_dim=8', '--config.model.g_features=4',
        '--config.model.d_features=4', '--config.data.batch_size=8',
        f'--config.train.num_steps={STEPS}', '--config.train.checkpoint_every=2',
        '--config.train.log_every=1', '--config.train.sample_every=100',
        '--config.train.num_samples=4', '--config.train.progress=false',
        # Evaluation at step 2 and at the end, sharded over the 4 devices of both processes.
        '--config.eval.every=2', '--config.eval.num_samples=16', '--config.eval.batch_size=8',
        '--config.eval.features=raw']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
    workdir = str(tmp_path / 'two')
    port = _free_port()
    env = dict(os.environ)
    env['XLA_FLAGS'] = ('--xla_force_host_platform_device_count=2 '
                        '--xla_backend_optimization_level=0')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    procs = []
    for pid in range(2):
        cmd = [sys.executable, '-m', 'ganjax', 'train', '--config', CONFIG, '--workdir', workdir,
               *ARGS,
               f'--config.parallel.coordinator_address=localhost:{port}',
               '--config.parallel.num_processes=2', f'--config.parallel.process_id={pid}']
        procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=400)[0])
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    assert 'over 2 processes' in outputs[0]

    # The same run in this process on 4 of its 8 simulated devices.
    config = config_lib.load_config_file(CONFIG)
    config_lib.apply_overrides(config, config_lib.parse_override_args(
        ARGS + ['--config.parallel.num_devices=4']))
    one = train_lib.train_and_evaluate(config, str(tmp_path / 'one'))

    _, _, two = run_dir.load_run(workdir)
    assert int(two.step) == STEPS
    for a, e in zip(jax.tree.leaves(two), jax.tree.leaves(one)):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        assert np.linalg.norm(a - e) <= 1e-5 * max(np.linalg.norm(e), 1e-1)
    # Checkpoints written once (steps 2 and 3), metrics written once per step.
    assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '3']
    records = summaries.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
    assert [r['step'] for r in records] == list(range(1, STEPS + 1))
    reference = summaries.read_jsonl(str(tmp_path / 'one' / 'metrics.jsonl'))
    np.testing.assert_allclose([r['d_loss'] for r in records],
                               [r['d_loss'] for r in reference], rtol=1e-5)
    evals = summaries.read_jsonl(os.path.join(workdir, 'eval', 'history.jsonl'))
    eval_reference = summaries.read_jsonl(str(tmp_path / 'one' / 'eval' / 'history.jsonl'))
    assert [r['step'] for r in evals] == [2, 3]
    for key in ('fid', 'precision', 'recall', 'coverage'):
        np.testing.assert_allclose([r[key] for r in evals], [r[key] for r in eval_reference],
                                   rtol=1e-4, atol=1e-6, err_msg=key)
    assert os.path.exists(os.path.join(workdir, 'best', 'best.json'))
