"""benchmarks/gpu_suite.sh runs end to end in its CPU dry run; result files name their machine."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import machine  # noqa: E402  (benchmarks/machine.py)

SECTIONS = ('dcgan64_bf16_b1024', 'dcgan28_sweep', 'resnet32_sweep', 'dcgan64_jit_all',
            'peers_dcgan64', 'peers_resnet32', 'upsample', 'population')


def test_isa_summary_reads_vector_and_matrix_units():
    assert machine.isa_summary(['avx', 'avx2', 'f16c', 'fma', 'sse4_2']) == 'AVX2+FMA, no AMX'
    amx = ['avx2', 'avx512_bf16', 'avx512bw', 'avx512f', 'amx_bf16', 'amx_int8', 'amx_tile']
    assert machine.isa_summary(amx) == 'AVX-512, AVX-512 BF16, AMX (bf16, int8)'
    assert machine.isa_summary([]) == 'unknown ISA'
    info = machine.cpu_info()
    assert info['cpu_model'] and info['cpu_isa'] == sorted(info['cpu_isa'])


@pytest.mark.slow
def test_gpu_suite_dry_run_end_to_end(tmp_path):
    pytest.importorskip('torch')
    out = tmp_path / 'gpu'
    proc = subprocess.run(['bash', os.path.join(ROOT, 'benchmarks', 'gpu_suite.sh'), '--dry-run',
                           '--out', str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, env={**os.environ, 'PYTHON': sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / 'sections.tsv', encoding='utf-8') as f:
        status = {line.split('\t')[0]: line.split('\t')[1] for line in f}
    assert status == {name: 'ok' for name in SECTIONS}, (status, proc.stdout[-3000:])
    summary = json.loads(open(glob.glob(str(out / 'summary_*.json'))[0]).read())
    sections = {row['section'] for row in summary['rows']}
    assert sections == set(SECTIONS), sections
    # The peers compared ganjax with PyTorch eager (the dry run skips torch.compile), and every
    # file names its machine.
    ratios = [r['value'] for r in summary['rows'] if 'PyTorch eager' in r['what']]
    assert len(ratios) == 2 and all(v.endswith('x') for v in ratios), ratios
    for path in glob.glob(str(out / '*.json')):
        record = json.loads(open(path).read())
        if not os.path.basename(path).startswith('summary_'):
            assert record['machine'] and 'cpu_isa' in record, path
