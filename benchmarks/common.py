"""What every benchmark result records: the machine, the versions, the date; and where it goes."""

import datetime
import json
import os
import platform

import flax
import jax

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def device_kind() -> str:
    """The first device's kind, e.g. 'cpu' or 'NVIDIA H100 80GB HBM3'."""
    return jax.devices()[0].device_kind


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (platform.processor() where there is none)."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def environment() -> dict:
    """Device kind and count, CPU model, platform, CPU count, jax/flax versions and the UTC
    date."""
    return {
        'device_kind': device_kind(),
        'cpu_model': cpu_model(),
        'device_count': jax.device_count(),
        'platform': platform.platform(),
        'cpu_count': os.cpu_count(),
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
