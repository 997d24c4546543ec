"""Which machine a benchmark ran on: the CPU's model and vector/matrix ISA, without importing jax.

A CPU figure means little without the instruction sets behind it: XLA:CPU and PyTorch's oneDNN
take different kernels with AVX2, AVX-512, AVX-512 BF16 or AMX, and bf16 in particular is fast
only where the CPU has bf16 units. Every result file records `cpu_model` and `cpu_isa` (through
`common.environment()`); the PyTorch peer, which must not import jax, imports this module alone.
"""

import os
import platform
import subprocess

#: /proc/cpuinfo flags that decide which kernels a framework can use: a flag is kept when it is
#: one of these or starts with 'avx' or 'amx' (avx512f, avx512_bf16, avx_vnni, amx_tile, ...).
_ISA_NAMES = ('fma', 'f16c', 'sse4_2')
_ISA_PREFIXES = ('avx', 'amx')


def _cpuinfo_field(name: str) -> str | None:
    """The first value of `name` in /proc/cpuinfo, or None where there is none."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def _lscpu_field(name: str) -> str | None:
    """The value of `name` in `lscpu`'s output, or None where lscpu is missing."""
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        key, _, value = line.partition(':')
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model() -> str:
    """The CPU model name, e.g. 'AMD EPYC' or 'Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz'.

    Returns:
      /proc/cpuinfo's 'model name', else lscpu's 'Model name', else platform.processor(), else
      'unknown'.
    """
    return (_cpuinfo_field('model name') or _lscpu_field('Model name') or platform.processor()
            or 'unknown')


def cpu_isa() -> list[str]:
    """The CPU's vector and matrix instruction sets (FMA, F16C, SSE4.2, AVX*, AMX*), sorted.

    Returns:
      The matching flags of /proc/cpuinfo (else of lscpu), e.g. ['avx', 'avx2', 'f16c', 'fma',
      'sse4_2']; empty where neither can be read (not Linux).
    """
    flags = (_cpuinfo_field('flags') or _lscpu_field('Flags') or '').split()
    return sorted({f for f in flags if f in _ISA_NAMES or f.startswith(_ISA_PREFIXES)})


def isa_summary(isa: list[str]) -> str:
    """A short reading of `isa` for tables: the widest vector ISA and the bf16/matrix units.

    Args:
      isa: flags as `cpu_isa` returns them.

    Returns:
      E.g. 'AVX2+FMA', 'AVX-512, AVX-512 BF16, AMX (bf16)', or 'unknown ISA' for an empty list.
    """
    if not isa:
        return 'unknown ISA'
    if 'avx512f' in isa:
        parts = ['AVX-512']
    elif 'avx2' in isa:
        parts = ['AVX2+FMA' if 'fma' in isa else 'AVX2']
    elif 'avx' in isa:
        parts = ['AVX']
    else:
        parts = ['no AVX']
    if 'avx512_bf16' in isa:
        parts.append('AVX-512 BF16')
    amx = [f[len('amx_'):] for f in isa if f.startswith('amx_') and f != 'amx_tile']
    if amx:
        parts.append(f"AMX ({', '.join(amx)})")
    elif 'avx512f' in isa or 'avx2' in isa:
        parts.append('no AMX')
    return ', '.join(parts)


def cpu_info() -> dict:
    """What every result file records about the host CPU.

    Returns:
      {'cpu_model', 'cpu_isa' (flags), 'cpu_isa_summary', 'cpu_count'}.
    """
    isa = cpu_isa()
    return {'cpu_model': cpu_model(), 'cpu_isa': isa, 'cpu_isa_summary': isa_summary(isa),
            'cpu_count': os.cpu_count()}
