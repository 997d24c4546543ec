"""The device layout of a run: mesh, shardings and placement (big_vision's sharding.py is the model).

`Parallel(config)` knows devices, never the step: the step is pure (`ganjax.train_step`) and is
compiled in one place, `ganjax.compose`, which takes its shardings from here.

* **jit** (default): a device mesh of axes ``('data', 'fsdp')``. The global batch is split over
  all devices; the state is replicated, or, with ``parallel.fsdp > 1``, every large leaf of the
  parameters, optimizer states and EMA is split over the 'fsdp' axis (ZeRO-3 / FSDP style: XLA
  gathers a layer's weights where it needs them and reduce-scatters its gradients). BatchNorm
  statistics and the losses' batch means are means over the global batch, whatever the number of
  devices, because the program computes exactly what the one-device program does.
* **pmap**: the same step under `jax.pmap`, kept for comparison (pmap is in maintenance mode since
  JAX 0.8). The state is stacked once per device and the batch split along a leading device axis.

Multi-host runs go through JAX's own runtime (`initialize_distributed`): every process runs the
same program, loads its own slice of each global batch, and orbax writes checkpoints once.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import ConfigDict

from ganjax.errors import ConfigError, lookup

DATA_AXIS = 'data'
FSDP_AXIS = 'fsdp'
#: A population's mesh axis (`sweep.member_devices` > 1): each device holds some members whole.
MEMBER_AXIS = 'member'
#: The mesh axes the batch is split over (all of them: FSDP is data parallelism too).
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)
STRATEGIES = ('jit', 'pmap')

# Environment variables by which a launcher names the coordinator (JAX's own, read by
# jax.distributed.initialize) and the cluster kinds JAX detects by itself.
_DISTRIBUTED_ENV = ('JAX_COORDINATOR_ADDRESS',)
_CLUSTER_ENV = ('SLURM_JOB_ID', 'OMPI_COMM_WORLD_SIZE', 'TPU_WORKER_HOSTNAMES',
                'MEGASCALE_COORDINATOR_ADDRESS')


def initialize_distributed(config: ConfigDict) -> bool:
    """Starts JAX's multi-host runtime when the config or the environment asks for it.

    Must run before anything touches a device. With ``parallel.distributed='auto'`` it initializes
    when ``parallel.coordinator_address`` is set, when ``JAX_COORDINATOR_ADDRESS`` is in the
    environment, or when JAX can detect the cluster (SLURM, Open MPI, a TPU pod slice); 'on'
    always initializes (the environment must then describe the cluster); 'off' never does.

    Args:
      config: the run config (its ``parallel`` section).

    Returns:
      True if this call initialized the runtime.

    Raises:
      ConfigError: for an inconsistent process count or id.
    """
    p = config.parallel
    mode = p.distributed
    if mode == 'off' or _distributed_is_initialized():
        return False
    given = bool(p.coordinator_address)
    from_env = any(os.environ.get(k) for k in _DISTRIBUTED_ENV + _CLUSTER_ENV)
    if mode == 'auto' and not (given or from_env):
        return False
    kwargs: dict[str, Any] = {}
    if given:
        if p.num_processes < 1 or not 0 <= p.process_id < p.num_processes:
            raise ConfigError(
                f'parallel.coordinator_address={p.coordinator_address!r} needs '
                f'parallel.num_processes >= 1 and 0 <= parallel.process_id < num_processes; got '
                f'{p.num_processes} and {p.process_id}')
        kwargs = dict(coordinator_address=p.coordinator_address, num_processes=p.num_processes,
                      process_id=p.process_id)
    jax.distributed.initialize(**kwargs)
    return True


def _distributed_is_initialized() -> bool:
    try:
        from jax._src import distributed  # noqa: PLC0415 (no public query exists)
        return distributed.global_state.client is not None
    except (ImportError, AttributeError):
        return False


#: XLA:CPU compile options (for ``jax.jit(..., compiler_options=...)`` or
#: ``Lowered.compile(compiler_options=...)``) that keep YNNPACK for dots and reductions but leave
#: convolutions to XLA's own Eigen implementation: jaxlib 0.10's default YNNPACK fusion list minus
#: individual_convolution, i.e. what ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=
#: -individual_convolution`` does for the whole process. Only valid on the CPU backend.
CPU_CONV_COMPILER_OPTIONS: dict[str, Any] = {
    'xla_cpu_experimental_ynn_fusion_type':
        'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE',
}


@functools.lru_cache(maxsize=None)
def _cpu_options_compile() -> bool:
    try:
        cpu = jax.devices('cpu')[0]
        x = jax.device_put(np.zeros((1, 3, 3, 1), np.float32), cpu)
        kernel = jax.device_put(np.zeros((3, 3, 1, 1), np.float32), cpu)
        conv = lambda a, b: jax.lax.conv_general_dilated(a, b, (1, 1), 'SAME',
                                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        jax.jit(conv).lower(x, kernel).compile(compiler_options=CPU_CONV_COMPILER_OPTIONS)
    except Exception:  # noqa: BLE001  (a jaxlib without the option rejects it at compile time)
        return False
    return True


def cpu_conv_compiler_options(backend: Optional[str] = None) -> Optional[dict[str, Any]]:
    """:data:`CPU_CONV_COMPILER_OPTIONS` if ``backend`` (default: jax's default backend) is the CPU
    and this jaxlib accepts them (checked once by compiling a tiny conv), else None.

    Measured on a 2-core x86 CPU with jaxlib 0.10.2 (benchmarks/conv_impl.py): YNNPACK, which
    jaxlib uses for convolutions by default, ran DCGAN-64's generator convs at 25-152 GFLOP/s
    against 51-234 for XLA's Eigen convolutions; the generator's forward + backward got 1.5x and
    the whole DCGAN-64 step 1.3x faster. ``jax.pmap`` takes no compiler options: the pmap path
    gets the same effect from ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=
    -individual_convolution``.

    Usage: ``jax.jit(step, compiler_options=cpu_conv_compiler_options())``.
    """
    if (backend or jax.default_backend()) != 'cpu':
        return None
    return dict(CPU_CONV_COMPILER_OPTIONS) if _cpu_options_compile() else None


def fsdp_spec(shape: tuple[int, ...], fsdp: int, min_size: int) -> P:
    """How one state leaf is split over the 'fsdp' axis: its largest axis divisible by `fsdp`.

    Args:
      shape: the leaf's shape.
      fsdp: size of the 'fsdp' mesh axis.
      min_size: leaves with fewer elements stay replicated (their gathers would cost more than
        the memory saved).

    Returns:
      A PartitionSpec (empty = replicated).
    """
    if fsdp <= 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    candidates = [i for i, s in enumerate(shape) if s % fsdp == 0]
    if not candidates:
        return P()
    axis = max(candidates, key=lambda i: shape[i])
    spec = [None] * len(shape)
    spec[axis] = FSDP_AXIS
    return P(*spec)


class Parallel:
    """The device layout of a run: mesh, shardings and placement of states and batches.

    Attributes:
      strategy: 'jit' or 'pmap'.
      mesh: the device mesh (axes 'data', 'fsdp'; 'fsdp' has size 1 under pmap).
      num_devices: devices in the mesh (over all processes).
      process_index, process_count: this process and how many take part.
      global_batch: the rows of each D update's real batch summed over devices:
        `data.batch_size`, plus `data.labelled_batch_size` for a semi-supervised run's labelled
        stream.
      member_axis: MEMBER_AXIS when a population is split over a mesh axis of its own, else
        None.
      member_devices: the size of that axis (1 without it).
    """

    def __init__(self, config: ConfigDict, population: bool = False):
        """Checks the layout against the devices present and builds the mesh.

        Nothing is compiled here: a layout that cannot work fails before any compilation.

        Args:
          config: the run config.
          population: the layout of a population (`ganjax.population`): with
            `sweep.member_devices` = m > 1 the mesh gets a leading 'member' axis of size m and
            each member's batch is split over the other n / m devices.

        Raises:
          ConfigError: for an unknown strategy, a mesh larger than the devices present, a batch
            that does not divide over the devices, or an FSDP size that does not divide them.
        """
        self.config = config
        p = config.parallel
        self.strategy = lookup({s: s for s in STRATEGIES}, p.strategy, 'parallel.strategy')
        self.process_index = jax.process_index()
        self.process_count = jax.process_count()
        present = jax.device_count()
        n = present if p.num_devices == 0 else int(p.num_devices)
        if n > present:
            raise ConfigError(
                f'parallel.num_devices={n} but only {present} {jax.devices()[0].platform} '
                f'device(s) are present' + (f' over {self.process_count} processes'
                                            if self.process_count > 1 else ''))
        if self.process_count > 1 and n != present:
            raise ConfigError(f'parallel.num_devices={n}: a multi-host run uses every device '
                              f'({present}); set parallel.num_devices=0')
        fsdp = int(p.fsdp)
        if self.strategy == 'pmap':
            if fsdp != 1:
                raise ConfigError(f'parallel.fsdp={fsdp} needs parallel.strategy="jit"; the pmap '
                                  'path keeps a full copy of the state on every device')
            if self.process_count > 1:
                raise ConfigError('parallel.strategy="pmap" is single-host here; multi-host runs '
                                  'use the default "jit"')
        members = int(config.sweep.member_devices) if population else 1
        if members < 1 or n % members:
            raise ConfigError(f'sweep.member_devices={members} does not divide the {n} devices')
        if members > 1 and (self.strategy == 'pmap' or self.process_count > 1):
            raise ConfigError('sweep.member_devices > 1 needs parallel.strategy="jit" on one '
                              'host; a multi-host sweep splits each member\'s batch instead '
                              '(sweep.member_devices=1)')
        self.member_devices = members
        self.member_axis = MEMBER_AXIS if members > 1 else None
        n_batch = n // members  # devices that split one member's batch
        if n_batch % fsdp:
            raise ConfigError(f'parallel.fsdp={fsdp} does not divide the {n_batch} devices' +
                              (f' of each member (sweep.member_devices={members})'
                               if members > 1 else ''))
        batch = int(config.data.batch_size)
        if batch % n_batch:
            n = n_batch
            near = sorted({m for m in (batch // n * n, (batch // n + 1) * n) if m > 0})
            raise ConfigError(
                f'data.batch_size={batch} does not divide over the {n} devices of the mesh '
                f'(data={n // fsdp} x fsdp={fsdp}); use a multiple of {n} such as '
                f'{" or ".join(map(str, near))}, or fewer devices (parallel.num_devices)')
        n = n_batch * members
        labelled = int(config.data.get('labelled_batch_size', 0))
        if labelled % n_batch:
            raise ConfigError(f'data.labelled_batch_size={labelled} does not divide over the '
                              f'{n_batch} devices of the mesh; use a multiple of {n_batch}')
        self.num_devices = n
        self.fsdp = fsdp
        self.fsdp_min_size = int(p.fsdp_min_size)
        self.global_batch = batch + labelled
        devices = jax.devices()[:n]
        # Auto axes: XLA propagates the shardings of the inputs through the step.
        if members > 1:
            self.mesh = jax.make_mesh((members, n_batch // fsdp, fsdp), (MEMBER_AXIS,) + BATCH_AXES,
                                      devices=devices, axis_types=(jax.sharding.AxisType.Auto,) * 3)
        else:
            self.mesh = jax.make_mesh((n // fsdp, fsdp), BATCH_AXES, devices=devices,
                                      axis_types=(jax.sharding.AxisType.Auto,) * 2)
        self.devices = list(self.mesh.devices.flat)
        self._replicated = NamedSharding(self.mesh, P())
        self._compiled: dict[tuple[int, bool], Callable] = {}

    # --- state ---------------------------------------------------------------------------

    def state_shardings(self, state: Any, leading: int = 0) -> Any:
        """The NamedSharding of every leaf of a state (concrete or abstract) under 'jit'.

        Args:
          state: a GANState or any pytree of arrays.
          leading: number of leading axes that are not the canonical leaf's (1 for a
            population's member axis); the first is split over the 'member' mesh axis when
            there is one, the others not.

        Returns:
          A pytree of NamedShardings like `state`.
        """
        def spec(x):
            inner = fsdp_spec(tuple(x.shape[leading:]), self.fsdp, self.fsdp_min_size)
            lead = [self.member_axis] + [None] * (leading - 1) if leading else []
            return NamedSharding(self.mesh, P(*lead, *inner))

        return jax.tree.map(spec, state)

    def init_state(self, make: Callable[[], Any], leading: int = 0) -> Any:
        """Runs a state constructor so that each shard is made where it lives.

        Args:
          make: () -> canonical state (e.g. `lambda: create_state(config, gan)`).
          leading: leading population axes of the state (see `state_shardings`).

        Returns:
          The state, laid out for the compiled step.
        """
        if self.strategy == 'pmap':
            return self.place_state(jax.jit(make)())
        shardings = self.state_shardings(jax.eval_shape(make), leading)
        return jax.jit(make, out_shardings=shardings)()

    def abstract_state(self, shapes: Any, leading: int = 0) -> Any:
        """Shapes, dtypes and target shardings of a canonical state, for checkpoint restore.

        Args:
          shapes: the state's abstract value (`jax.eval_shape` of its constructor).
          leading: leading population axes.
        """
        if self.strategy == 'pmap':
            one = jax.sharding.SingleDeviceSharding(self.devices[0])
            shardings = jax.tree.map(lambda _: one, shapes)
        else:
            shardings = self.state_shardings(shapes, leading)
        return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                            shapes, shardings)

    def place_state(self, state: Any, leading: int = 0) -> Any:
        """Lays a canonical state (one logical copy, e.g. restored) out for the compiled step."""
        if self.strategy == 'pmap':
            n = len(self.devices)
            return jax.tree.map(
                lambda x: jax.device_put(np.broadcast_to(np.asarray(x), (n,) + x.shape),
                                         self._pmap_sharding(x.ndim + 1)), state)
        return jax.device_put(state, self.state_shardings(state, leading))

    def canonical_state(self, state: Any) -> Any:
        """One logical copy of the state, for checkpoints, sampling and evaluation."""
        if self.strategy == 'pmap':
            return jax.tree.map(lambda x: x[0], state)
        return state

    @property
    def replicated(self) -> NamedSharding:
        """The sharding of a leaf every device holds whole (jit path)."""
        return self._replicated

    # --- data ----------------------------------------------------------------------------

    def _pmap_sharding(self, ndim: int) -> NamedSharding:
        mesh = jax.sharding.Mesh(np.array(self.devices), (DATA_AXIS,))
        return NamedSharding(mesh, P(DATA_AXIS, *([None] * (ndim - 1))))

    def batch_sharding(self, ndim: int, batch_axis: int,
                       member_axis: int | None = None) -> NamedSharding:
        """Sharding of an array whose axis `batch_axis` is the global batch (jit path), and whose
        axis `member_axis`, if given, is a population's member axis."""
        spec = [None] * ndim
        spec[batch_axis] = BATCH_AXES
        if member_axis is not None:
            spec[member_axis] = self.member_axis
        return NamedSharding(self.mesh, P(*spec))

    def put_batch(self, local: Any, batch_axis: int, member_axis: int | None = None) -> Any:
        """Sends this process's rows of a global batch to the devices.

        Args:
          local: host array, or dict of arrays (e.g. {'x', 'label'}), whose axis `batch_axis`
            holds this process's rows (global batch / process count).
          batch_axis: which axis is the batch.
          member_axis: which axis is a population's member axis (split over the mesh's
            'member' axis when it has one).

        Returns:
          The global array(s) (jit) or the per-device stack [devices, ..., batch / devices, ...]
          (pmap), in the structure of `local`.
        """
        if isinstance(local, dict):
            return {k: self.put_batch(v, batch_axis, member_axis) for k, v in local.items()}
        if self.strategy == 'pmap':
            n = len(self.devices)
            shape = local.shape
            split = local.reshape(shape[:batch_axis] + (n, shape[batch_axis] // n) +
                                  shape[batch_axis + 1:])
            split = np.moveaxis(split, batch_axis, 0)
            return jax.device_put(split, self._pmap_sharding(split.ndim))
        sharding = self.batch_sharding(local.ndim, batch_axis, member_axis)
        global_shape = list(local.shape)
        global_shape[batch_axis] = self.global_batch
        return jax.make_array_from_process_local_data(sharding, local, tuple(global_shape))

    def put_indices(self, global_indices: np.ndarray, member_axis: int | None = None) -> jax.Array:
        """Sends the global batch indices [..., batch] (known to every process) to the devices
        (`member_axis`: as in `put_batch`)."""
        if self.strategy == 'pmap':
            n = len(self.devices)
            split = global_indices.reshape(global_indices.shape[:-1] + (n, -1))
            split = np.moveaxis(split, -2, 0)
            return jax.device_put(split, self._pmap_sharding(split.ndim))
        sharding = self.batch_sharding(global_indices.ndim, global_indices.ndim - 1, member_axis)
        return jax.make_array_from_callback(global_indices.shape, sharding,
                                            lambda idx: global_indices[idx])

    def put_dataset(self, x: Any) -> Any:
        """Places a whole training split [N, ...] (an array or a dict of arrays, e.g. {'x',
        'label'}) on every device of the mesh (every process passes it): replicated under jit,
        stacked once per device under pmap."""
        if isinstance(x, dict):
            return {k: self.put_dataset(v) for k, v in x.items()}
        if self.strategy == 'pmap':
            n = len(self.devices)
            arr = jax.device_put(np.broadcast_to(x, (n,) + x.shape),
                                 self._pmap_sharding(x.ndim + 1))
        else:
            arr = jax.make_array_from_callback(x.shape, self._replicated, lambda idx: x[idx])
        return arr

    # --- inside the compiled step ------------------------------------------------------

    def constrain(self, v: jax.Array, batch_axis: int = 0) -> jax.Array:
        """Inside a jit-compiled function: split `v`'s axis `batch_axis` like the data batch.

        The step applies it to what it creates itself (latent codes, labels), so that XLA
        computes them sharded instead of replicated.
        """
        return jax.lax.with_sharding_constraint(v, self.batch_sharding(v.ndim, batch_axis))

    def host_metrics(self, metrics: dict[str, jax.Array]) -> dict[str, np.ndarray]:
        """Fetches a step's metrics to the host (one value per step, float64)."""
        host = jax.device_get(metrics)
        if self.strategy == 'pmap':
            host = {k: v[0] for k, v in host.items()}
        return {k: np.asarray(v, np.float64) for k, v in host.items()}

    def describe(self) -> str:
        """One line naming the layout, for the run log."""
        kind = self.devices[0].device_kind
        what = f'{self.num_devices} x {kind}'
        if self.process_count > 1:
            what += f' over {self.process_count} processes'
        if self.strategy == 'pmap':
            return f'pmap over {what}'
        layout = 'state sharded over fsdp=%d' % self.fsdp if self.fsdp > 1 else 'state replicated'
        n_batch = self.num_devices // self.member_devices
        members = f'member={self.member_devices} x ' if self.member_axis else ''
        return f'jit over {what} (mesh {members}data={n_batch // self.fsdp} x fsdp={self.fsdp}, ' \
               f'{layout})'
