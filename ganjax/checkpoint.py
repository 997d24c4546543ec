"""Checkpoints of a run: the GANState and the data position, through orbax-checkpoint."""

import os
from typing import Any, Callable, Mapping

import jax
import orbax.checkpoint as ocp

from ganjax.state import GANState

#: Prefix of a checkpoint folder that failed to restore and was set aside (orbax ignores it).
CORRUPT_PREFIX = 'corrupt_'


class Checkpointer:
    """Saves and restores (GANState, data position) with an orbax `CheckpointManager`.

    Orbax writes each checkpoint into a temporary folder and renames it only once complete, so an
    interrupted save never leaves a checkpoint that restore would pick up (and the temporary
    folders a kill leaves are removed when the folder is opened again); it keeps the last
    `max_to_keep` and, on several hosts, writes once for all of them. A checkpoint damaged after
    it was written (truncated or partly deleted files) is set aside on restore, and the previous
    one is used.
    """

    def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False):
        """Opens (and creates) the checkpoint folder.

        Args:
          directory: folder of the checkpoints, e.g. WORKDIR/checkpoints.
          max_to_keep: how many recent checkpoints to keep.
          read_only: only restore (sampling, evaluation): nothing in the folder is created,
            cleaned or set aside, so a run training there at the same time is left alone.
        """
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        # Read-only by options rather than orbax's read_only flag, which logs a warning on
        # every `ganjax sample`.
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                               enable_async_checkpointing=True,
                                               cleanup_tmp_directories=not read_only)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=('state', 'data'))

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints, in increasing order."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: GANState, data_position: int,
             extra: Mapping[str, Any] | None = None) -> None:
        """Starts writing a checkpoint; it completes in the background (see `wait`).

        Args:
          step: the state's step.
          state: the GANState.
          data_position: the data iterator's position (batches consumed).
          extra: JSON-serializable values committed atomically with the state (see
            `read_extra`).
        """
        if self.read_only:
            raise RuntimeError(f'{self.directory} was opened read-only')
        if step in self._manager.all_steps():
            return
        record = {'position': int(data_position), 'step': int(step), **(extra or {})}
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(record)), force=True)

    def read_extra(self, step: int) -> dict[str, Any]:
        """The JSON record saved with a checkpoint: {'position', 'step', **extra}."""
        restored = self._manager.restore(step, args=ocp.args.Composite(
            data=ocp.args.JsonRestore()))
        return dict(restored['data'])

    def restore(self, template: GANState, step: int | None = None,
                warn: Callable[[str], None] | None = None) -> tuple[GANState, int]:
        """Restores a checkpoint into arrays shaped (and sharded) like `template`.

        Args:
          template: a GANState (concrete or from `jax.eval_shape`) giving structure, dtypes and
            shardings.
          step: which checkpoint; the latest if None. When None and the latest cannot be read
            (files truncated or deleted), it is renamed `corrupt_<step>` and the one before it is
            tried, and so on.
          warn: called with a line naming each checkpoint set aside.

        Returns:
          (state, data_position).

        Raises:
          FileNotFoundError: if there is no (readable) checkpoint.
        """
        abstract = jax.tree.map(_abstract, template)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                  data=ocp.args.JsonRestore())
        if step is not None:
            restored = self._manager.restore(step, args=args)
            return restored['state'], int(restored['data']['position'])
        for candidate in reversed(self.all_steps()):
            try:
                restored = self._manager.restore(candidate, args=args)
            except Exception as e:  # noqa: BLE001 (any failure to read it: fall back)
                self._set_aside(candidate, e, warn)
                continue
            return restored['state'], int(restored['data']['position'])
        raise FileNotFoundError(f'no complete checkpoint in {self.directory}')

    def _set_aside(self, step: int, error: Exception, warn) -> None:
        """Renames an unreadable checkpoint out of orbax's sight, so that it is neither restored
        again nor mistaken for the step's checkpoint when training reaches that step again."""
        path = os.path.join(self.directory, str(step))
        aside = os.path.join(self.directory, f'{CORRUPT_PREFIX}{step}')
        if self.read_only:
            aside = path  # left where it is
        elif jax.process_index() == 0 and os.path.isdir(path):
            if os.path.exists(aside):
                aside += f'_{os.getpid()}'
            os.replace(path, aside)
        # The manager caches the steps it found.
        self._manager.reload()
        if warn is not None:
            first = str(error).strip().splitlines()[0][:120] if str(error).strip() else ''
            moved = '' if aside == path else f'moved to {aside}, '
            warn(f'warning: checkpoint {path} cannot be read ({type(error).__name__}: {first}); '
                 f'{moved}falling back to the previous checkpoint')

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
