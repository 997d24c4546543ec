"""The adversarial update step: a pure function `step(state, batch) -> (state, metrics)`.

`make_train_step` closes over everything static (modules, optimizers, loss, penalty and their
hyperparameters) and returns a function of arrays only. It holds no device code, no jit and no
collectives: compiling, donating and sharding it is the caller's business (`ganjax.train`), so the
same step runs on one device, sharded over a mesh, or vmapped over a population of GANs.
"""

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax
from ml_collections import ConfigDict

from ganjax import augment as augment_lib
from ganjax import dynamics, losses, models, optim, penalties
from ganjax.data.scaling import Scaling
from ganjax.errors import ConfigError, lookup
from ganjax.models.layers import CLASS_HEADS
from ganjax.state import GANState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

#: `config.precision` -> the models' computation dtype. Parameters, optimizer states, BatchNorm
#: statistics, logits and losses stay float32 whatever the precision: bfloat16 has float32's
#: exponent range, so no loss scaling is needed (unlike float16).
PRECISIONS = {'float32': 'float32', 'bf16': 'bfloat16'}

# Folded into a step's keys for what was added after the unconditional step's draws were fixed
# (labels of fakes, augmentation), so that an unconditional run keeps its random numbers.
_LABEL_SALT = 0x4C42
_AUGMENT_SALT = 0x4155


@dataclasses.dataclass(frozen=True)
class GANDef:
    """The static half of a GAN: module definitions and the functions that train them.

    Attributes:
      generator: Linen module, (z [B, latent_dim], y [B] or None) -> x [B, *data_shape].
      discriminator: Linen module, (x [B, *data_shape], y [B] or None) -> {'logit': [B],
        'features': [B, F], 'class_logits': [B, K] for the class heads}.
      g_tx: generator optimizer (hyperparameters injected, see `ganjax.optim`).
      d_tx: discriminator optimizer.
      objective: (D's outputs on reals and fakes, their labels, hparams) -> (d_loss, g_loss,
        aux) (`ganjax.losses.ObjectiveFn`): the adversarial loss named by the config, or, for a
        population, the one of `loss_names` that `hparams['loss_index']` chooses per member.
      loss_names: the losses the objective chooses from.
      penalty_fn: one of `ganjax.penalties.PENALTIES`.
      latent_dim: size of z.
      data_shape: shape of one example.
      num_classes: classes of a class-conditional generator (0 = unconditional).
      weight_clip: whether D's weights are clipped after each update (WGAN); the bound itself is
        `hparams['weight_clip']`.
      ema_warmup: ramp the EMA decay up early in the run.
      scaling: how the data's stored values map to the model's range (the source's
        `ganjax.data.Scaling`); None accepts only float batches already in the model's range.
      d_head: D's output layer (`ganjax.models.layers.D_HEADS`).
      d_classes: classes of D's projection or class head (0 = none).
      labelled_rows: rows at the end of each real batch that come from the labelled stream
        (`data.labelled_batch_size`, semi-supervised 'kplus1' runs); 0 = none.
      augment: the augmentation of D's input (`ganjax.augment`, `config.augment`); off by default.
      fake_labels: the classes a conditional G makes its fakes of: 'uniform' (drawn uniformly)
        or 'data' (those of the real batch of the same D update; see `config.train.fake_labels`).
    """

    generator: nn.Module
    discriminator: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    objective: losses.ObjectiveFn
    loss_names: tuple[str, ...]
    penalty_fn: penalties.PenaltyFn
    latent_dim: int
    data_shape: tuple[int, ...]
    num_classes: int = 0
    weight_clip: bool = False
    ema_warmup: bool = True
    scaling: Scaling | None = None
    d_head: str = 'logit'
    d_classes: int = 0
    labelled_rows: int = 0
    augment: augment_lib.AugmentSpec = augment_lib.AugmentSpec()
    fake_labels: str = 'uniform'


def _check_labels_config(config: ConfigDict, head: str) -> int:
    # Partial labels only make sense to a discriminator that learns classes from them.
    num_labels = int(config.data.num_labels)
    rows = int(config.data.labelled_batch_size)
    if head != 'kplus1' and (num_labels or rows):
        raise ConfigError(f'data.num_labels={num_labels} and data.labelled_batch_size={rows} '
                          "are for semi-supervised training: set model.d_head='kplus1' (or "
                          'leave them 0)')
    if rows and config.parallel.strategy == 'pmap':
        raise ConfigError('data.labelled_batch_size > 0 needs parallel.strategy="jit" (the '
                          'labelled rows sit at the end of each global batch)')
    return rows


def build_gan(config: ConfigDict, data_shape: tuple[int, ...], num_classes: int = 0, *,
              scaling: Scaling | None = None,
              loss_names: tuple[str, ...] | None = None) -> GANDef:
    """Builds the modules, optimizers, loss and penalty that `config` names.

    Args:
      config: the full run config.
      data_shape: the shape of one example, e.g. (28, 28, 1) or (2,).
      num_classes: the dataset's number of classes (0 = unlabelled); used when
        `model.conditional` is set.
      scaling: the data's `Scaling` (a source's `scaling`), applied to every batch inside the
        step; None for float data already in the model's range.
      loss_names: the losses a population chooses from per member (`hparams['loss_index']`);
        default: `(config.loss.name,)`.

    Returns:
      The GANDef.

    Raises:
      ConfigError: for an unknown name, a model that cannot produce `data_shape`, a
        conditional model or class head without labelled data, a head and conditioning that
        do not fit together, or augmentation of data that is not an image.
    """
    data_shape = tuple(int(d) for d in data_shape)
    model_cfg = config.model.to_dict()
    model_cfg['dtype'] = lookup(PRECISIONS, config.precision, 'precision')
    head = config.model.d_head
    if head == 'auto':
        head = 'projection' if config.model.conditional else 'logit'
    if config.model.conditional and head == 'kplus1':
        raise ConfigError("model.d_head='kplus1' trains an unconditional G beside a K+1-class D: "
                          'set model.conditional=False (or use the acgan head)')
    if head in ('projection', 'acgan') and not config.model.conditional:
        raise ConfigError(f'model.d_head={head!r} is a class-conditional head: set '
                          'model.conditional=True')
    classes = 0
    if config.model.conditional or head == 'kplus1':
        if num_classes < 1:
            what = 'model.conditional=True' if config.model.conditional else \
                "model.d_head='kplus1'"
            raise ConfigError(f'{what} needs labelled data, but the dataset has no classes '
                              '(num_classes=0)')
        classes = int(num_classes)
    model_cfg['d_head'] = head
    rows = _check_labels_config(config, head)
    g_classes, d_classes, head = models.class_split(head, classes)
    g, d = models.build_models(model_cfg, data_shape, classes)
    g_tx, d_tx = optim.make_optimizers(config)
    names = tuple(loss_names) if loss_names else (config.loss.name,)
    if config.loss.name not in names:
        raise ConfigError(f'loss.name={config.loss.name!r} is not among the losses {names}')
    objective = losses.class_objective(
        losses.adversarial_objective(tuple(losses.get_loss(n) for n in names)), head,
        feature_matching_g=bool(config.loss.feature_matching), labelled_rows=rows)
    return GANDef(generator=g, discriminator=d, g_tx=g_tx, d_tx=d_tx, objective=objective,
                  loss_names=names, penalty_fn=penalties.get_penalty(config.penalty.name),
                  latent_dim=int(config.model.latent_dim), data_shape=data_shape,
                  num_classes=g_classes, weight_clip=float(config.loss.weight_clip) > 0,
                  ema_warmup=bool(config.ema.warmup), scaling=scaling, d_head=head,
                  d_classes=d_classes, labelled_rows=rows,
                  augment=augment_lib.spec_from_config(config, data_shape),
                  fake_labels=str(config.train.get('fake_labels', 'uniform')))


def hparams_from_config(config: ConfigDict, gan: GANDef) -> dict[str, jax.Array]:
    """The numeric hyperparameters of a run, as the pytree `GANState.hparams` holds them.

    Everything a sweep may vary without changing the program's shape: the learning rates, the
    optimizer's betas, eps and weight decay (and its `optim.EXTRA_HPARAMS`, e.g. `optimism`), the
    penalty weight, the weight-clipping bound, the EMA decay, the class-loss weight, the index of
    the loss in `gan.loss_names`, and with augmentation its probability (`augment_p`, adjusted by
    the step under ADA, which also keeps `ada_rt_sum` here).

    Args:
      config: the run (or population member) config.
      gan: from `build_gan`.

    Returns:
      name -> float32 scalar (`loss_index`: int32).
    """
    g, d = optim.optimizer_hparams(config, 'g'), optim.optimizer_hparams(config, 'd')
    values = {'g_lr': g['learning_rate'], 'd_lr': d['learning_rate'], 'b1': g['b1'],
              'b2': g['b2'], 'eps': g['eps'], 'weight_decay': g['weight_decay'],
              'penalty_weight': float(config.penalty.weight),
              'weight_clip': float(config.loss.weight_clip),
              'ema_decay': float(config.ema.decay),
              'class_weight': float(config.loss.class_weight),
              # The optimizer's own hyperparameters (optimistic Adam's optimism), G's and D's alike.
              **{k: v for k, v in g.items() if k not in optim.OPTIMIZER_HPARAMS}}
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}
    hparams['loss_index'] = jnp.asarray(gan.loss_names.index(config.loss.name), jnp.int32)
    hparams.update(augment_lib.initial_hparams(config, gan.augment))
    return hparams


def _optimizer_hparams(hparams: dict[str, jax.Array], which: str) -> dict[str, jax.Array]:
    # An optimizer's own hyperparameters (optim.EXTRA_HPARAMS) are in the state only when the
    # run's optimizer has them.
    extra = {k: hparams[k] for ks in optim.EXTRA_HPARAMS.values() for k in ks if k in hparams}
    return {'learning_rate': hparams[f'{which}_lr'], 'b1': hparams['b1'], 'b2': hparams['b2'],
            'eps': hparams['eps'], 'weight_decay': hparams['weight_decay'], **extra}


def _split_variables(variables) -> tuple[Any, dict]:
    variables = dict(variables)
    params = variables.pop('params')
    return params, variables


def create_state(config: ConfigDict, gan: GANDef, rng: jax.Array | None = None) -> GANState:
    """Initialises parameters, optimizer states, the EMA copy of G and the hyperparameters.

    Args:
      config: the full run config (`seed` is used when `rng` is None).
      gan: from `build_gan`.
      rng: optional PRNG key (uint32[2]) to initialise from.

    Returns:
      A GANState at step 0. A population is `ganjax.state.stack` of its members' states.
    """
    if rng is None:
        rng = jax.random.PRNGKey(config.seed)
    k_g, k_d, k_run = jax.random.split(rng, 3)
    z = jnp.zeros((2, gan.latent_dim), jnp.float32)
    x = jnp.zeros((2,) + gan.data_shape, jnp.float32)
    y = jnp.zeros((2,), jnp.int32)
    g_params, g_state = _split_variables(gan.generator.init(
        k_g, z, y if gan.num_classes else None, train=False))
    d_params, d_state = _split_variables(gan.discriminator.init(
        k_d, x, y if gan.d_classes else None, train=False))
    hparams = hparams_from_config(config, gan)
    return GANState(
        step=jnp.zeros((), jnp.int32),
        rng=k_run,
        g_params=g_params,
        d_params=d_params,
        g_state=g_state,
        d_state=d_state,
        g_opt_state=optim.with_hparams(gan.g_tx.init(g_params), _optimizer_hparams(hparams, 'g')),
        d_opt_state=optim.with_hparams(gan.d_tx.init(d_params), _optimizer_hparams(hparams, 'd')),
        # A copy, not an alias: the state is donated to the step and each leaf needs its own buffer.
        ema_params=jax.tree.map(jnp.copy, g_params),
        hparams=hparams,
    )


def to_model(gan: GANDef, x: jax.Array) -> jax.Array:
    """Maps a batch of stored data to the model's range with the data's declared scaling.

    Images travel to the device in their stored integer dtype (a quarter of the bytes of
    float32 for uint8) and are scaled here, inside the compiled step.

    Args:
      gan: from `build_gan`; `gan.scaling` says how the data is scaled.
      x: a batch of stored data.

    Returns:
      float32 array of the same shape.

    Raises:
      ConfigError: for integer data when the GAN was built without a scaling (nothing says what
        its values mean).
    """
    if gan.scaling is not None:
        return gan.scaling.to_model(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ConfigError(f'a batch of {x.dtype} data needs the data\'s scaling: build the GAN '
                          'with build_gan(..., scaling=source.scaling)')
    return x.astype(jnp.float32)


def apply_module(module: nn.Module, params, collections: dict, x: jax.Array,
                 train: bool, y: jax.Array | None = None) -> tuple[jax.Array, dict]:
    """Runs a module and returns its output with its updated non-param collections.

    Args:
      module: a Linen module taking (x, y, train=...).
      params: its parameters.
      collections: its other variable collections ({} if none).
      x: the input.
      train: training mode (BatchNorm batch statistics, spectral-norm power iteration).
      y: optional int labels [B] (read by conditional models).

    Returns:
      (output, collections), the collections updated in training mode and unchanged otherwise.
    """
    variables = {'params': params, **collections}
    if train and collections:
        out, new = module.apply(variables, x, y, train=True, mutable=list(collections))
        return out, dict(new)
    return module.apply(variables, x, y, train=train), collections


def sample_latent(rng: jax.Array, batch_size: int, latent_dim: int) -> jax.Array:
    """Standard normal latent codes, [batch_size, latent_dim] float32."""
    return jax.random.normal(rng, (batch_size, latent_dim), jnp.float32)


def sample_labels(rng: jax.Array, batch_size: int, num_classes: int) -> jax.Array | None:
    """Uniform class labels for a conditional generator, int32 [batch_size]; None if
    `num_classes` is 0."""
    if not num_classes:
        return None
    return jax.random.randint(rng, (batch_size,), 0, num_classes, jnp.int32)


def _global_norm(tree) -> jax.Array:
    return optax.tree.norm(jax.tree.map(lambda g: g.astype(jnp.float32), tree))


def make_train_step(config: ConfigDict, gan: GANDef, *, axis_name: str | None = None,
                    constrain: Callable[[jax.Array], jax.Array] | None = None,
                    unroll_critic: bool = False
                    ) -> Callable[[GANState, Batch], tuple[GANState, Metrics]]:
    """Builds the pure adversarial update step.

    One call makes `train.n_critic` discriminator updates (a `lax.scan`, each on its own real
    batch), then one generator update, then the EMA update of G's parameters: one XLA program.
    `train.updates` (`ganjax.dynamics`) says what G's gradient is taken against: the updated D
    ('alternating'), the D the step started from ('simultaneous'), or, for 'extragradient' (with
    n_critic = 1), both players' gradients are taken at a point extrapolated from the current one
    (`dynamics.extragradient_step`) and reported metrics are those at the current point.
    Every numeric hyperparameter is read from `state.hparams`, so the same step can be vmapped
    over a population of GANs whose members differ in them (learning rates, betas, penalty weight,
    EMA decay, loss variant).

    The same function serves every parallel path (see `ganjax.compose`). Under `jax.jit` with a
    sharded batch it is used as is: the batch means of the losses and of BatchNorm are global and
    XLA inserts the collectives. Under `pmap`, pass `axis_name`: each device then holds a slice of
    the batch, and the step makes the result equal to the one-device step by drawing the global
    latent batch and keeping its slice, gathering the logits before the loss, averaging BatchNorm
    statistics (the models are cloned with that `axis_name`) and gradients over the axis.

    Args:
      config: the full run config (only what fixes the program's shape is read: n_critic, the
        penalty interval, the game dynamics `train.updates`).
      gan: from `build_gan`.
      axis_name: the pmap axis the batch is split over, or None.
      constrain: applied to every batch-major array the step creates itself (the latent codes
        and labels), e.g. a sharding constraint that splits it like the data; None = identity.
      unroll_critic: unroll the scan over the n_critic D updates. Same results; XLA's cost
        analysis counts a loop body once, so benchmarks count FLOPs on the unrolled program.

    Returns:
      `step(state, batch) -> (state, metrics)`. `batch['x']` has shape
      [n_critic, B, *data_shape] (stored data; B is the per-device batch under pmap) and
      `batch['label']`, when present, int [n_critic, B] (required when D has classes; -1 marks
      an unlabelled example). With a labelled stream (`gan.labelled_rows` = L), the last L of the
      B rows are labelled examples and fakes are drawn for the other B - L. Other keys are
      carried along unread. `metrics` are float32 scalars: d_loss, d_real, d_fake (the loss
      terms), penalty, d_grad_norm, d_acc_real, d_acc_fake (averaged over the n_critic D
      updates), g_loss, g_real, g_fake, g_grad_norm; d_class (the class cross-entropy of the
      acgan and kplus1 heads), g_class (acgan), g_feature_matching (loss.feature_matching);
      with augmentation also augment_p (after this step's ADA adjustment) and ada_rt
      (E[sign(D(augmented real))]).
    """
    n_critic = int(config.train.n_critic)
    if n_critic < 1:
        raise ConfigError(f'train.n_critic must be >= 1, got {n_critic}')
    pen_interval = int(config.penalty.interval)
    if pen_interval < 1:
        raise ConfigError(f'penalty.interval must be >= 1, got {pen_interval}')
    updates = config.train.updates
    dynamics.check_updates(updates, n_critic)
    G, D = gan.generator, gan.discriminator
    if axis_name is not None:
        # BatchNorm averages its statistics over the device axis: a field of the modules, so no
        # global state tells them which axis (the step is traced under pmap with this name).
        G, D = G.clone(axis_name=axis_name), D.clone(axis_name=axis_name)
    constrain = constrain or (lambda v: v)
    # Labels reach D (projection) or the objective (class heads) whenever D has classes.
    labelled = gan.d_classes > 0
    if gan.labelled_rows and axis_name is not None:
        raise ConfigError('a labelled stream (data.labelled_batch_size) needs the jit path')

    if axis_name is None:
        gather = mean = lambda v: v
        local_slice = lambda v: v
        global_batch = lambda b: b
    else:
        # Under pmap the tiled all_gather transposes to a reduce-scatter and the pmean of the
        # gradients then divides the device count back out: the gradients equal the one-device
        # gradients of the global-batch loss (tests/test_parallel.py checks this).
        gather = lambda v: jax.tree.map(lambda a: lax.all_gather(a, axis_name, tiled=True), v)
        mean = lambda v: lax.pmean(v, axis_name)
        global_batch = lambda b: b * lax.axis_size(axis_name)

        def local_slice(v):
            b = v.shape[0] // lax.axis_size(axis_name)
            return lax.dynamic_slice_in_dim(v, lax.axis_index(axis_name) * b, b, axis=0)

    def latent(rng, b):
        # The global batch of codes (and labels), then this device's slice: the same codes as on
        # one device.
        z = constrain(local_slice(sample_latent(rng, global_batch(b), gan.latent_dim)))
        y = sample_labels(jax.random.fold_in(rng, _LABEL_SALT), global_batch(b), gan.num_classes)
        return z, None if y is None else constrain(local_slice(y))

    def data_labels(y_fake, y_real):
        # train.fake_labels='data': each fake takes the class of a real example of the same
        # update, so fakes come in the data's class proportions and a penalty's interpolates
        # join a real and a fake of one class; unlabelled reals (-1) keep the uniform draw.
        if gan.fake_labels != 'data' or y_fake is None or y_real is None:
            return y_fake
        y_real = y_real[:y_fake.shape[0]].astype(jnp.int32)
        return jnp.where(y_real >= 0, y_real, y_fake)

    def generate(params, collections, z, y):
        return apply_module(G, params, collections, z, train=True, y=y)

    def discriminate(params, collections, x, y, rng, hp):
        """The one place D sees data in training (real, fake or interpolated batches).

        Returns D's output dict and its updated collections. With `config.augment.policy` set,
        x is augmented first (`ganjax.augment`), each op with probability `hp['augment_p']`,
        drawing from `rng`. That includes a penalty's inputs: its gradient is that of D(T(.))
        with respect to the un-augmented points, as DiffAugment's R1 differentiates D(T(reals))
        with respect to the reals.
        """
        if gan.augment.enabled:
            if axis_name is not None:  # each device augments its own examples differently
                rng = jax.random.fold_in(rng, lax.axis_index(axis_name))
            x = augment_lib.augment(x, rng, gan.augment.ops, hp['augment_p'])
        return apply_module(D, params, collections, x, train=True, y=y)

    def step(state: GANState, batch: Batch) -> tuple[GANState, Metrics]:
        x_all = to_model(gan, batch['x'])
        expected = (n_critic, None) + gan.data_shape
        if x_all.ndim != len(expected) or x_all.shape[0] != n_critic or \
                x_all.shape[2:] != gan.data_shape:
            raise ConfigError(
                f"batch['x'] has shape {x_all.shape}; the step expects "
                f'[n_critic={n_critic}, batch, *{gan.data_shape}]')
        y_all = batch.get('label')
        if labelled:
            if y_all is None:
                raise ConfigError(f"a GAN whose D has classes (model.d_head={gan.d_head!r}) "
                                  "needs batch['label']")
            if y_all.shape != x_all.shape[:2]:
                raise ConfigError(f"batch['label'] has shape {y_all.shape}; the step expects "
                                  f'{x_all.shape[:2]} (n_critic, batch)')
            y_all = y_all.astype(jnp.int32)
        else:
            y_all = None  # an unconditional GAN ignores labels
        hp = state.hparams
        # The labelled stream's rows (semi-supervised runs) are reals but not part of the batch
        # that fakes are drawn for.
        b = x_all.shape[1] - gan.labelled_rows
        if b < 1:
            raise ConfigError(f"batch['x'] has {x_all.shape[1]} rows per D update, not more than "
                              f'the {gan.labelled_rows} rows of the labelled stream')
        key = jax.random.fold_in(state.rng, state.step)
        k_d, k_g = jax.random.split(key)

        def d_grad(d_params, d_state, g_params, x_real, y_real, i):
            # D's gradient for its i-th update of this step, against G's `g_params`.
            k_z, k_pen = jax.random.split(jax.random.fold_in(k_d, i))
            k_real, k_fake, k_pen_d = jax.random.split(jax.random.fold_in(k_z, _AUGMENT_SALT), 3)
            z, y_fake = latent(k_z, b)
            y_fake = data_labels(y_fake, y_real)
            # G runs in training mode as in the G update, but its statistics are only kept there.
            fake, _ = generate(g_params, state.g_state, z, y_fake)
            fake = lax.stop_gradient(fake)

            def d_loss_fn(params):
                real_out, cols = discriminate(params, d_state, x_real, y_real, k_real, hp)
                fake_out, cols = discriminate(params, cols, fake, y_fake, k_fake, hp)
                real_out, fake_out = gather(real_out), gather(fake_out)
                d_loss, _, aux = gan.objective(real_out, fake_out, gather(y_real),
                                               gather(y_fake), hp)
                real_logits, fake_logits = real_out['logit'], fake_out['logit']
                # The penalty pairs each real row with a fake one: the labelled stream's rows
                # (semi-supervised runs) stay out of it, as of the adversarial loss.
                x_pen = x_real[:b]
                y_pen = None if y_real is None else y_real[:b]
                d_fn = lambda v: discriminate(params, cols, v, y_pen, k_pen_d, hp)[0]['logit']
                # Under pmap the penalty is this device's mean; the gradient mean completes it.
                # Its random interpolation (WGAN-GP, DRAGAN) is drawn per device, so those two
                # match the one-device step in distribution, not bit for bit.
                pen = penalties.penalty_term(
                    gan.penalty_fn, hp['penalty_weight'], pen_interval,
                    state.step * n_critic + i, d_fn, x_pen, fake, k_pen)
                out = {'d_loss': d_loss, 'd_real': aux['d_real'], 'd_fake': aux['d_fake'],
                       **({'d_class': aux['d_class']} if gan.d_head in CLASS_HEADS else {}),
                       'penalty': mean(pen),
                       'd_acc_real': jnp.mean((real_logits > 0).astype(jnp.float32)),
                       'd_acc_fake': jnp.mean((fake_logits < 0).astype(jnp.float32))}
                if gan.augment.enabled:  # ADA's overfitting heuristic r_t, on augmented reals
                    out['ada_rt'] = jnp.mean(jnp.sign(real_logits))
                return d_loss + pen, (cols, out)

            (_, (d_state, metrics)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
            grads = mean(grads)
            metrics['d_grad_norm'] = _global_norm(grads)
            return grads, d_state, metrics

        def clip_d(d_params):
            if not gan.weight_clip:
                return d_params
            clip = hp['weight_clip']
            return jax.tree.map(lambda p: jnp.clip(p, -clip, clip).astype(p.dtype), d_params)

        def d_update(carry, inputs):
            d_params, d_state, d_opt_state = carry
            grads, d_state, metrics = d_grad(d_params, d_state, state.g_params, *inputs)
            updates, d_opt_state = gan.d_tx.update(grads, d_opt_state, d_params)
            d_params = clip_d(optax.apply_updates(d_params, updates))
            return (d_params, d_state, d_opt_state), metrics

        z, y_fake = latent(k_g, b)
        k_real, k_fake = jax.random.split(jax.random.fold_in(k_g, _AUGMENT_SALT))
        x_real = x_all[-1]
        y_real = y_all[-1] if labelled else None
        y_fake = data_labels(y_fake, y_real)

        def g_grad(g_params, d_params, d_state):
            # G's loss, its updated collections and extra metrics, and its gradient, against D's
            # `d_params` and `d_state`.
            (g_loss, (g_state, g_extra)), g_grads = jax.value_and_grad(
                g_loss_fn, has_aux=True)(g_params, d_params, d_state)
            return g_loss, g_state, g_extra, mean(g_grads)

        def g_loss_fn(params, d_params, d_state):
            fake, g_cols = generate(params, state.g_state, z, y_fake)
            # D's statistics from the G update are discarded: only D's own passes keep theirs.
            fake_out, _ = discriminate(d_params, d_state, fake, y_fake, k_fake, hp)
            # Only the relativistic losses and feature matching read reals in G's loss; for the
            # others XLA removes this forward pass as dead code.
            real_out, _ = discriminate(d_params, d_state, x_real, y_real, k_real, hp)
            _, g_loss, aux = gan.objective(gather(real_out), gather(fake_out),
                                           gather(y_real), gather(y_fake), hp)
            keys = ('g_real', 'g_fake') + (('g_class',) if gan.d_head == 'acgan' else ()) + \
                tuple(k for k in ('g_feature_matching',) if k in aux)
            return g_loss, (g_cols, {k: aux[k] for k in keys})

        d_opt_state = optim.with_hparams(state.d_opt_state, _optimizer_hparams(hp, 'd'))
        g_opt_state = optim.with_hparams(state.g_opt_state, _optimizer_hparams(hp, 'g'))
        if updates == 'extragradient':  # n_critic == 1 (dynamics.check_updates)
            x0, y0 = x_all[0], None if y_all is None else y_all[0]

            def game_grads(params):
                g_at, d_at = params
                d_grads, d_state, d_metrics = d_grad(d_at, state.d_state, g_at, x0, y0,
                                                     jnp.zeros((), jnp.int32))
                g_loss, g_state, g_extra, g_grads = g_grad(g_at, d_at, state.d_state)
                return (g_grads, d_grads), dict(d_state=d_state, metrics=d_metrics, g_loss=g_loss,
                                                g_state=g_state, g_extra=g_extra, g_grads=g_grads)

            # Metrics are those at the step's starting point; collections (BatchNorm
            # statistics, spectral-norm vectors) are those of the pass at the extrapolated point,
            # whose gradients make the update.
            (g_params, d_params), (g_opt_state, d_opt_state), here, there = \
                dynamics.extragradient_step(
                    game_grads, (state.g_params, state.d_params), (g_opt_state, d_opt_state),
                    (gan.g_tx, gan.d_tx), project=lambda p: (p[0], clip_d(p[1])))
            metrics, g_loss, g_extra = here['metrics'], here['g_loss'], here['g_extra']
            g_grads, d_state, g_state = here['g_grads'], there['d_state'], there['g_state']
        else:
            (d_params, d_state, d_opt_state), d_metrics = lax.scan(
                d_update, (state.d_params, state.d_state, d_opt_state),
                (x_all, y_all, jnp.arange(n_critic, dtype=jnp.int32)),
                unroll=n_critic if unroll_critic else 1)
            metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), d_metrics)
            # Simultaneous: G's gradient against D as it was before this step's D updates.
            g_against = (state.d_params, state.d_state) if updates == 'simultaneous' else \
                (d_params, d_state)
            g_loss, g_state, g_extra, g_grads = g_grad(state.g_params, *g_against)
            g_updates, g_opt_state = gan.g_tx.update(g_grads, g_opt_state, state.g_params)
            g_params = optax.apply_updates(state.g_params, g_updates)

        step_f = state.step.astype(jnp.float32)
        decay = hp['ema_decay']
        if gan.ema_warmup:
            # Early on the average would be dominated by the random initialisation; ramp the
            # decay up as (1 + t) / (10 + t), as in TF's ExponentialMovingAverage num_updates.
            decay = jnp.minimum(decay, (1.0 + step_f) / (10.0 + step_f))
        ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                                  state.ema_params, g_params)

        metrics.update(g_extra)
        metrics['g_loss'] = g_loss
        metrics['g_grad_norm'] = _global_norm(g_grads)
        hparams = state.hparams
        if gan.augment.adaptive:
            hparams = augment_lib.ada_update(gan.augment, hparams, metrics['ada_rt'], state.step,
                                             global_batch(b) * n_critic)
        if gan.augment.enabled:
            metrics['augment_p'] = hparams['augment_p']
        new_state = state.replace(
            step=state.step + 1, g_params=g_params, d_params=d_params, g_state=g_state,
            d_state=d_state, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
            ema_params=ema_params, hparams=hparams)
        return new_state, metrics

    return step


def make_multi_step(step: Callable[[GANState, Batch], tuple[GANState, Metrics]]
                    ) -> Callable[[GANState, Batch], tuple[GANState, Metrics]]:
    """Turns a step into k steps per call: a `lax.scan` over batches stacked on a leading axis.

    Args:
      step: from `make_train_step`.

    Returns:
      `multi(state, batches) -> (state, metrics)`, where every leaf of `batches` has a leading
      axis of size k and every metric comes back with shape [k].
    """

    def multi(state: GANState, batches: Batch) -> tuple[GANState, Metrics]:
        return lax.scan(step, state, batches)

    return multi


def make_generate_fn(gan: GANDef) -> Callable[..., jax.Array]:
    """Returns `generate(params, g_state, z, y=None) -> x`, G in inference mode (running
    statistics).

    Args:
      gan: from `build_gan`.

    Returns:
      A pure function; pass `state.ema_params` (or `state.g_params`) and `state.g_state`, and
      int labels `y` [B] for a conditional generator.
    """

    def generate(params, g_state, z, y=None):
        return apply_module(gan.generator, params, g_state, z, train=False, y=y)[0]

    return generate


def make_classify_fn(gan: GANDef) -> Callable[..., jax.Array]:
    """Returns `classify(d_params, d_state, x) -> probabilities [B, K]` of D's class head.

    The K real classes of an 'acgan' or 'kplus1' discriminator (for 'kplus1', the class
    distribution given that the example is real: the softmax of the K logits), D in inference
    mode (running statistics).

    Args:
      gan: from `build_gan`, with a class head.

    Returns:
      A pure function of D's parameters, its other collections and a batch of stored data
      (scaled by `to_model` inside).

    Raises:
      ConfigError: if D has no class head.
    """
    if gan.d_head not in CLASS_HEADS:
        raise ConfigError(f"this run's discriminator has no class head (model.d_head="
                          f"{gan.d_head!r}); classify needs 'acgan' or 'kplus1'")

    def classify(d_params, d_state, x):
        out, _ = apply_module(gan.discriminator, d_params, d_state, to_model(gan, x), train=False)
        return jax.nn.softmax(out['class_logits'], axis=-1)

    return classify
