"""Classifying and counting images with a trained discriminator's class head.

The discriminator of an 'acgan' or 'kplus1' run (`model.d_head`) is a K-class classifier of real
data; `ganjax classify` runs it over a folder, an image file or an array of examples and writes
one CSV row per example (the predicted class, its probability and every class's probability) and
the count of examples per predicted class.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from typing import Callable

import numpy as np

from ganjax.errors import ConfigError, DataError

#: Input files read as arrays of examples in the data's stored units (as `ganjax sample` writes).
ARRAY_EXTENSIONS = ('.npy', '.npz')


def _read_array(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f'{path}: not a readable {os.path.splitext(path)[1]} file ({e})') from e
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        if 'x' not in loaded:
            raise DataError(f"{path}: an .npz input needs an array 'x' (it has "
                            f'{sorted(loaded.files)})')
        labels = loaded['label'] if 'label' in loaded else None
        return loaded['x'], labels


def _read_images(path: str, data_config, data_shape: tuple[int, ...]
                 ) -> tuple[np.ndarray, np.ndarray | None, list[str], tuple[str, ...]]:
    """Reads a folder (class subfolders allowed) or one image with the image-folder loader."""
    from ganjax import data as data_lib

    if len(data_shape) != 3:
        raise ConfigError(f'{path}: this run models data of shape {data_shape}, not images; give '
                          f'an array file ({", ".join(ARRAY_EXTENSIONS)})')
    config = data_config.copy_and_resolve_references()
    with config.unlocked():
        config.name = 'image_folder'
        config.eval_fraction = 0.0
        # Every image becomes one example of the model's size and channels.
        config.image_size = int(data_shape[0])
        config.channels = int(data_shape[-1])
        for key, off in (('crop_size', 0), ('num_labels', 0)):
            if key in config:
                config[key] = off
    tmp = None
    try:
        if os.path.isfile(path):
            # The folder loader reads folders: give the file one of its own.
            tmp = tempfile.mkdtemp(prefix='ganjax-classify-')
            os.symlink(os.path.abspath(path), os.path.join(tmp, os.path.basename(path)))
            config.path = tmp
        else:
            config.path = path
        source = data_lib.DATASETS['image_folder'](config, 'train')
        batch = source.get_batch(np.arange(len(source)))
        files = list(source.files) if tmp is None else [os.path.basename(path)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    labels = batch['label'] if source.num_classes else None
    return batch['x'], labels, files, tuple(source.class_names)


def predict(classify_fn: Callable, d_params, d_state, x: np.ndarray,
            batch_size: int = 256) -> np.ndarray:
    """Class probabilities of every example, in batches.

    Args:
      classify_fn: from `ganjax.train_step.make_classify_fn`, jitted or not.
      d_params: D's parameters.
      d_state: D's other collections.
      x: examples in the data's stored units [N, ...].
      batch_size: examples per call (the last batch is padded, so one program serves all).

    Returns:
      float32 [N, K].
    """
    out = []
    for i in range(0, len(x), batch_size):
        part = x[i:i + batch_size]
        pad = batch_size - len(part) if len(x) > batch_size else 0
        if pad:
            part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
        probs = np.asarray(classify_fn(d_params, d_state, part), np.float32)
        out.append(probs[:len(probs) - pad])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def count_classes(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Examples per predicted class, int64 [K]."""
    return np.bincount(np.asarray(predicted, np.int64), minlength=num_classes)


def classify(workdir: str, input_path: str, out: str, step: int | None = None,
             best: bool = False, batch_size: int = 256,
             log: Callable[[str], None] = print) -> dict:
    """Classifies the examples at `input_path` with the run's discriminator and writes a CSV.

    Args:
      workdir: a run whose `model.d_head` is 'acgan' or 'kplus1'.
      input_path: a folder of images (class subfolders give true labels when their names are
        the run's classes), one image file, or a .npy / .npz ('x', optional 'label') array of
        examples in the data's stored units and dtype.
      out: the predictions CSV; the counts go to `<out stem>_counts.csv`.
      step: checkpoint step (latest if None).
      best: use the best checkpoint.
      batch_size: examples per compiled call.
      log: where progress lines go.

    Returns:
      {'num': N, 'counts': {class name: count}, 'accuracy': float or None, 'out': out,
      'counts_out': path}.

    Raises:
      ConfigError: a run without a class head, or input of the wrong kind.
      DataError: unreadable input, or examples whose shape or dtype the run cannot read.
    """
    import jax

    from ganjax import run_dir
    from ganjax.train_step import make_classify_fn

    if not os.path.exists(input_path):
        raise ConfigError(f'--input {input_path}: no such file or folder')
    config, gan, state = run_dir.load_run(workdir, step, best=best, log=log)
    classify_fn = jax.jit(make_classify_fn(gan))
    names = run_dir.load_class_names(workdir)
    true, input_names = None, ()
    if input_path.lower().endswith(ARRAY_EXTENSIONS):
        x, true = _read_array(input_path)
        files = [f'{os.path.basename(input_path)}[{i}]' for i in range(len(x))]
    else:
        x, true, files, input_names = _read_images(input_path, config.data, gan.data_shape)
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f'--input {input_path}: no examples')
    if tuple(x.shape[1:]) != gan.data_shape:
        raise DataError(f'--input {input_path}: examples of shape {tuple(x.shape[1:])}; the run '
                        f'reads {gan.data_shape}')
    if gan.scaling is not None:
        gan.scaling.check(x.shape[1:], x.dtype, f'--input {input_path}')
    if true is not None and input_names:
        # Subfolder names map to the run's classes by name; unknown names leave labels unknown.
        index = {n: i for i, n in enumerate(names)}
        true = np.array([index.get(input_names[t], -1) if t >= 0 else -1 for t in true])
    probs = predict(classify_fn, state.d_params, state.d_state, x, batch_size)
    predicted = np.argmax(probs, axis=-1)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['example', 'predicted', 'predicted_name', 'probability']
                        + (['true', 'true_name'] if true is not None else [])
                        + [f'p_{n}' for n in names])
        for i, name in enumerate(files):
            row = [name, int(predicted[i]), names[predicted[i]], f'{probs[i, predicted[i]]:.6f}']
            if true is not None:
                t = int(true[i])
                row += [t, names[t] if t >= 0 else '']
            writer.writerow(row + [f'{p:.6f}' for p in probs[i]])
    counts = count_classes(predicted, gan.d_classes)
    counts_out = os.path.splitext(out)[0] + '_counts.csv'
    with open(counts_out, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['class', 'name', 'count', 'share'])
        for k, c in enumerate(counts):
            writer.writerow([k, names[k], int(c), f'{c / len(x):.6f}'])
    accuracy = None
    if true is not None and np.any(true >= 0):
        known = true >= 0
        accuracy = float(np.mean(predicted[known] == true[known]))
    return {'num': len(x), 'counts': {names[k]: int(c) for k, c in enumerate(counts)},
            'accuracy': accuracy, 'out': out, 'counts_out': counts_out,
            'step': int(state.step)}
