"""File formats that `ganjax sample --out` writes for one kind of data, chosen by extension.

Pictures, `.npy`/`.npz` arrays and folders of image files are written for any data by the CLI
itself. A kind of data whose users have their own file format (AnnData `.h5ad` and CSV tables
for expression profiles, FASTA for DNA) registers a writer here under the extension. A writer
gets the samples already mapped back to the data's units (`scaling.to_data`) and the run's
config, from which it rebuilds what the format needs (gene names, the inverse of a
preprocessing, the alphabet).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np


class SampleWriter(Protocol):
    """Writes samples to a file."""

    def __call__(self, out: str, x: np.ndarray, labels: np.ndarray | None,
                 class_names: tuple[str, ...], config: Any, seed: int) -> str:
        """Writes the samples.

        Args:
          out: the file to write (its folder exists; write it atomically: a temporary name,
            then `os.replace`).
          x: samples [N, ...] in the data's units (`scaling.to_data` of the generator's output).
          labels: int32 [N], the classes they were generated for, or None (unconditional).
          class_names: the run's class names (indexable by label).
          config: the run's config (`data` section: which source, which preprocessing).
          seed: the sampling seed, for formats that draw (e.g. bases from probabilities).

        Returns:
          One line for the log saying what was written (e.g. the decoding used).

        Raises:
          ConfigError: when the run's data cannot be written in this format.
        """


#: Lower-case extension (with its dot) -> 'module:function' of its writer, imported only when
#: used (the CLI starts without importing every data kind's dependencies).
SAMPLE_WRITERS: dict[str, str] = {
    '.h5ad': 'ganjax.data.expression:write_h5ad',
    '.csv': 'ganjax.data.expression:write_csv',
    '.fa': 'ganjax.data.fasta:write_fasta',
    '.fasta': 'ganjax.data.fasta:write_fasta',
}


def writer_for(extension: str) -> SampleWriter | None:
    """The writer registered for a file extension, or None.

    Args:
      extension: e.g. '.h5ad' (any case).

    Returns:
      The writer function, or None when the extension has none.
    """
    target = SAMPLE_WRITERS.get(extension.lower())
    if target is None:
        return None
    module, name = target.split(':')
    return getattr(importlib.import_module(module), name)
