"""Checkpoints of a run: the GANState and the data position, through orbax-checkpoint."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from ganjax.state import GANState


class Checkpointer:
    """Saves and restores (GANState, data position) with an orbax `CheckpointManager`.

    Orbax writes each checkpoint into a temporary folder and renames it only once complete, so an
    interrupted save never leaves a checkpoint that restore would pick up; it keeps the last
    `max_to_keep` and, on several hosts, writes once for all of them.
    """

    def __init__(self, directory: str, max_to_keep: int = 3):
        """Opens (and creates) the checkpoint folder.

        Args:
          directory: folder of the checkpoints, e.g. WORKDIR/checkpoints.
          max_to_keep: how many recent checkpoints to keep.
        """
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                               enable_async_checkpointing=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=('state', 'data'))

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: GANState, data_position: int) -> None:
        """Starts writing a checkpoint; it completes in the background (see `wait`).

        Args:
          step: the state's step.
          state: the GANState.
          data_position: the data iterator's position (batches consumed).
        """
        if step in self._manager.all_steps():
            return
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave({'position': int(data_position), 'step': int(step)})),
            force=True)

    def restore(self, template: GANState, step: int | None = None) -> tuple[GANState, int]:
        """Restores a checkpoint into arrays shaped (and sharded) like `template`.

        Args:
          template: a GANState (concrete or from `jax.eval_shape`) giving structure, dtypes and
            shardings.
          step: which checkpoint; the latest if None.

        Returns:
          (state, data_position).
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f'no checkpoint in {self.directory}')
        abstract = jax.tree.map(_abstract, template)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
        return restored['state'], int(restored['data']['position'])

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def _abstract(x: Any) -> Any:
    # Orbax places restored arrays by their sharding; a template without one (jax.eval_shape)
    # restores onto the first local device.
    sharding = getattr(x, 'sharding', None)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
