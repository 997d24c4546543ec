"""Metrics on disk: JSON lines, TensorBoard event files and a PNG plot of the loss curves."""

import json
import os
from typing import Mapping

import numpy as np


class MetricsWriter:
    """Appends metrics to WORKDIR/metrics.jsonl and to TensorBoard event files.

    The JSON-lines files must already be cut back to the step training starts from
    (`ganjax.run_dir.trim_to_checkpoint`); TensorBoard is told to drop its later events.
    """

    def __init__(self, workdir: str, resume_step: int = 0):
        """Opens the writers.

        Args:
          workdir: the run's folder.
          resume_step: the step training starts from (0 for a new run); TensorBoard events of
            this step and later, left by an earlier attempt, are purged.
        """
        self.path = os.path.join(workdir, 'metrics.jsonl')
        self._file = open(self.path, 'a', encoding='utf-8')
        from tensorboardX import SummaryWriter  # noqa: PLC0415 (pulls protobuf; only for training)
        self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'), purge_step=resume_step)
        self.eval_path = os.path.join(workdir, 'eval', 'history.jsonl')
        self._eval_file = None

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Writes one record of scalars for `step`."""
        record = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(record) + '\n')
        self._file.flush()
        for k, v in scalars.items():
            self._tb.add_scalar(k, float(v), int(step))

    def write_eval(self, step: int, values: Mapping[str, float]) -> None:
        """Writes one evaluation: a line of WORKDIR/eval/history.jsonl and eval/* scalars."""
        if self._eval_file is None:
            os.makedirs(os.path.dirname(self.eval_path), exist_ok=True)
            self._eval_file = open(self.eval_path, 'a', encoding='utf-8')
        self._eval_file.write(json.dumps({'step': int(step),
                                          **{k: float(v) for k, v in values.items()}}) + '\n')
        self._eval_file.flush()
        undefined = []
        for k, v in values.items():
            # A metric can be undefined at a step (kl_to_uniform when no sample is near a mode):
            # it stays NaN in the history, and TensorBoard, which cannot draw NaN, gets a note.
            if np.isfinite(float(v)):
                self._tb.add_scalar(f'eval/{k}', float(v), int(step))
            else:
                undefined.append(f'{k} = {float(v)}')
        if undefined:
            self._tb.add_text('eval/undefined', f'undefined at step {int(step)} (not plotted): '
                              + ', '.join(undefined), int(step))

    def write_image(self, step: int, tag: str, picture: np.ndarray) -> None:
        """Writes a uint8 [H, W, C] picture to TensorBoard."""
        self._tb.add_image(tag, picture, int(step), dataformats='HWC')

    def close(self) -> None:
        """Flushes and closes both writers."""
        self._file.close()
        if self._eval_file is not None:
            self._eval_file.close()
        self._tb.close()


def read_jsonl(path: str) -> list[dict]:
    """Reads a JSON-lines metrics file.

    Lines that are not a JSON record with an integer 'step' (a torn last line from a killed run,
    garbage from an editor) are skipped; the valid lines after them are kept.

    Args:
      path: the file (missing: no records).

    Returns:
      The records, in file order.
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get('step'), int):
                records.append(record)
    return records


def truncate_jsonl(path: str, step: int) -> None:
    """Keeps only the valid records with record['step'] <= step, rewriting the file atomically.

    Args:
      path: a JSON-lines file (nothing happens if it is missing).
      step: the last step kept.
    """
    if not os.path.exists(path):
        return
    keep = [r for r in read_jsonl(path) if r['step'] <= step]
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        for r in keep:
            f.write(json.dumps(r) + '\n')
    os.replace(tmp, path)


def _save_figure(fig, out_path: str) -> None:
    """Writes a matplotlib figure as PNG atomically (a reader never sees half a file)."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    tmp = out_path + '.tmp.png'
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out_path)


def plot_losses(metrics_path: str, out_path: str) -> bool:
    """Plots the loss curves, D's real/fake terms and D's accuracy from a metrics file as PNG.

    Args:
      metrics_path: WORKDIR/metrics.jsonl.
      out_path: the PNG to write.

    Returns:
      True if a plot was written (False when there are no records yet).
    """
    records = read_jsonl(metrics_path)
    if not records:
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    steps = np.array([r['step'] for r in records])
    panels = [('losses', ('d_loss', 'g_loss', 'penalty')),
              ('D loss terms', ('d_real', 'd_fake')),
              ('D accuracy', ('d_acc_real', 'd_acc_fake'))]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), dpi=100)
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            values = [r.get(k) for r in records]
            if all(v is not None for v in values) and (k != 'penalty' or any(values)):
                ax.plot(steps, values, label=k)
        ax.set_title(title)
        ax.set_xlabel('step')
        ax.legend()
        ax.grid(alpha=0.3)
    _save_figure(fig, out_path)
    return True


def plot_eval(history_path: str, out_path: str, floor: Mapping[str, float] | None = None) -> bool:
    """Plots the evaluations of a run over training (WORKDIR/eval/history.jsonl) as PNG.

    Panels: FID (and the mean per-class FID of conditional runs); precision, recall, density and
    coverage; for Gaussian mixtures, the modes covered and the high-quality fraction; for
    conditional runs, the conditional accuracy beside the classifier's real accuracy.

    Args:
      history_path: the JSON-lines file of evaluations.
      out_path: the PNG to write.
      floor: optional real-vs-real values, drawn as dotted lines in the metric's colour.

    Returns:
      True if a plot was written (False when there are no evaluations).
    """
    records = read_jsonl(history_path)
    if not records:
        return False
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    steps = np.array([r['step'] for r in records])
    panels = [('Fréchet distance', ('fid', 'fid_per_class') if 'fid_per_class' in records[0]
               else ('fid',)),
              ('k-NN manifold metrics', ('precision', 'recall', 'density', 'coverage'))]
    if 'cond_acc' in records[0]:
        panels.append(('conditional accuracy', ('cond_acc', 'real_acc')))
    if 'modes_covered' in records[0]:
        panels.append(('modes covered', ('modes_covered',)))
        panels.append(('high-quality fraction', ('high_quality',)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), dpi=100)
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            line, = ax.plot(steps, [r.get(k, np.nan) for r in records], marker='.', label=k)
            if floor is not None and k in floor:
                ax.axhline(floor[k], color=line.get_color(), linestyle=':', linewidth=1)
        ax.set_title(title + (' (dotted: real vs real)' if floor else ''), fontsize=9)
        ax.set_xlabel('step')
        if len(keys) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save_figure(fig, out_path)
    return True
