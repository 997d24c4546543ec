"""Real crops beside generated ones for a run of configs/microscopy_crops.py (or any image run).

Draws --num random real examples of the run's training split (the crops the generator learns)
and --num samples of the run's EMA generator, both shown in the data's own units (the samples
through the run's stored `Scaling.to_data`, so a percentile-normalised run is shown in its
original colours), and writes one PNG: real on the left, generated on the right. A JSON beside it
records the run (config, steps, training time from the run's metrics) and the environment.

    python -m ganjax.data.prepare_microscopy --out data/microscopy
    ganjax train --config configs/microscopy_crops.py --workdir runs/microscopy_crops
    python benchmarks/microscopy_crops.py --workdir runs/microscopy_crops
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (benchmarks/common.py, beside this script)
from ganjax import data, images, run_dir, summaries  # noqa: E402
from ganjax.train_step import make_generate_fn, sample_latent  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def side_by_side(real: np.ndarray, fake: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two uint8 image batches [N, H, W, C] as grids, left and right of a white gap.

    Many-channel data is shown as `images.channel_montage` (channels side by side, gray).
    """
    def grid(x):
        if x.shape[-1] not in (1, 3):
            x = images.channel_montage(x)
        return images.make_grid(x)

    left, right = grid(real), grid(fake)
    h = max(left.shape[0], right.shape[0])
    pad = lambda g: np.pad(g, ((0, h - g.shape[0]), (0, 0), (0, 0)))  # noqa: E731
    return np.concatenate([pad(left), np.full((h, gap, left.shape[2]), 255, np.uint8),
                           pad(right)], axis=1)


def main(argv=None) -> int:
    """Writes the picture and its JSON; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', required=True)
    parser.add_argument('--num', type=int, default=36)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=os.path.join(common.RESULTS_DIR,
                                                      'microscopy_crops_cpu.png'))
    args = parser.parse_args(argv)
    config, gan, state = run_dir.load_run(args.workdir)
    scaling = run_dir.load_scaling(args.workdir)
    source = data.build_source(config.data, 'train')
    rng = np.random.default_rng(args.seed)
    real = source.get_batch(np.sort(rng.choice(len(source), args.num, replace=False)))['x']
    z = sample_latent(jax.random.PRNGKey(args.seed), args.num, gan.latent_dim)
    fake = scaling.to_data(np.asarray(jax.jit(make_generate_fn(gan))(
        state.ema_params, state.g_state, z, None)))
    picture = side_by_side(real, fake)
    if picture.dtype != np.uint8:  # 16-bit data: shown by its top 8 bits
        picture = (picture >> 8).astype(np.uint8)
    images.save_png(picture, args.out)
    metrics = summaries.read_jsonl(os.path.join(args.workdir, 'metrics.jsonl'))
    # Each record averages the steps since the previous one at its steps_per_sec.
    steps = [0] + [r['step'] for r in metrics]
    seconds = sum((b - a) / r['steps_per_sec'] for a, b, r in zip(steps, steps[1:], metrics)
                  if r.get('steps_per_sec'))
    record = {
        'benchmark': 'microscopy_crops', 'workdir': args.workdir,
        'picture': os.path.relpath(os.path.abspath(args.out), ROOT),
        'step': int(state.step), 'dataset': source.description,
        'scaling': scaling.to_json(), 'percentile_window': [w.tolist() for w in scaling.window],
        'last_metrics': metrics[-1] if metrics else None,
        'train_seconds_from_steps_per_sec': round(seconds, 1),
        'config': json.loads(config.to_json()), **common.environment(),
    }
    path = os.path.splitext(args.out)[0] + '.json'
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=2)
    print(f'wrote {args.out} and {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
