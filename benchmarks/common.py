"""What every benchmark result records: the machine, the versions, the date; and where it goes."""

import datetime
import json
import os
import platform

import flax
import jax

import machine  # benchmarks/machine.py, beside this file

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def device_kind() -> str:
    """The first device's kind, e.g. 'cpu' or 'NVIDIA H100 80GB HBM3'."""
    return jax.devices()[0].device_kind


cpu_model = machine.cpu_model


def machine_label() -> str:
    """Which machine ran, in a few words for tables: the accelerator's name, or on the CPU its
    model and ISA, e.g. 'NVIDIA H200' or 'AMD EPYC (AVX2+FMA, no AMX)'."""
    device = jax.devices()[0]
    if device.platform != 'cpu':
        return device.device_kind
    return f'{machine.cpu_model()} ({machine.isa_summary(machine.cpu_isa())})'


def environment() -> dict:
    """Device kind, name and count, the CPU's model and ISA flags (avx2, avx512*, amx*), platform,
    CPU count, the 1-minute load average (timings under load are not comparable), jax/flax versions
    and the UTC date."""
    return {
        'device_kind': device_kind(),
        'machine': machine_label(),
        **machine.cpu_info(),
        'device_count': jax.device_count(),
        'platform': platform.platform(),
        'load_average_1min': os.getloadavg()[0] if hasattr(os, 'getloadavg') else None,
        'jax_version': jax.__version__,
        'flax_version': flax.__version__,
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }


def write_result(record: dict, out: str, default_name: str) -> str:
    """Writes a result as JSON to `out`, or to results/<default_name>_<device kind>.json.

    Returns:
      The path written.
    """
    kind = record.get('device_kind', device_kind()).replace(' ', '_')
    out = out or os.path.join(RESULTS_DIR, f'{default_name}_{kind}.json')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=2)
    return out
