"""Adversarial losses as pure functions of the discriminator's logits.

Every loss has the same signature::

    loss_fn(real_logits, fake_logits) -> (d_loss, g_loss, aux)

`real_logits` and `fake_logits` are float arrays of shape [B] (the discriminator's raw outputs, before
any sigmoid). `d_loss` and `g_loss` are scalars averaged over the batch; `aux` holds the real and
fake terms of the discriminator loss (`d_real`, `d_fake`, so `d_loss == d_real + d_fake`) and of the
generator loss (`g_real`, `g_fake`, so `g_loss == g_real + g_fake`; `g_real` is 0 except for the
relativistic losses). Every loss returns the same `aux` keys (`AUX_KEYS`), so that losses can be
chosen per member of a vmapped population by an index (`lax.switch` needs one output structure).
A loss is chosen by name from `LOSSES`; a user's own loss enters the table with `register_loss`.

Terms with log(sigmoid(.)) are written with `jax.nn.log_sigmoid` / `softplus`: log(sigmoid(x))
underflows to -inf for x below about -88 in float32, which turns a confident discriminator into a
NaN gradient.
"""

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from ganjax.errors import ConfigError, check_registration, lookup

LossOutput = tuple[jax.Array, jax.Array, dict[str, jax.Array]]
LossFn = Callable[[jax.Array, jax.Array], LossOutput]

#: The keys of every loss's `aux`.
AUX_KEYS = ('d_real', 'd_fake', 'g_real', 'g_fake')


def _output(d_real, d_fake, g_fake, g_real=None) -> LossOutput:
    # One output structure for every loss; G's real term is 0 where G's loss does not read reals.
    if g_real is None:
        g_real = jnp.zeros((), jnp.float32)
    aux = {'d_real': d_real, 'd_fake': d_fake, 'g_real': g_real, 'g_fake': g_fake}
    return d_real + d_fake, g_real + g_fake, aux


def _f32(real_logits, fake_logits):
    # Logits may come out of a bfloat16 network; sums over the batch are done in float32.
    return jnp.asarray(real_logits, jnp.float32), jnp.asarray(fake_logits, jnp.float32)


def _bce_d_terms(r, f):
    # -log sigmoid(r) and -log(1 - sigmoid(f)), the standard GAN discriminator's two terms.
    return jnp.mean(jax.nn.softplus(-r)), jnp.mean(jax.nn.softplus(f))


def minimax(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """The original saturating minimax loss.

    D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))), whose gradient vanishes
    when D confidently rejects the fakes (the reason for the non-saturating variant).

    Args:
      real_logits: D's logits on real data, shape [B].
      fake_logits: D's logits on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real' (0), 'g_fake'}.

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. https://arxiv.org/abs/1406.2661
    """
    r, f = _f32(real_logits, fake_logits)
    d_real, d_fake = _bce_d_terms(r, f)
    return _output(d_real, d_fake, -d_fake)  # G minimises log(1 - sigmoid(f))


def non_saturating(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """The non-saturating loss: D as in minimax, G maximises log D(G(z)).

    Args:
      real_logits: D's logits on real data, shape [B].
      fake_logits: D's logits on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real' (0), 'g_fake'}.

    References:
      Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, section 3.
      https://arxiv.org/abs/1406.2661
    """
    r, f = _f32(real_logits, fake_logits)
    d_real, d_fake = _bce_d_terms(r, f)
    return _output(d_real, d_fake, jnp.mean(jax.nn.softplus(-f)))  # -log sigmoid(f)


def wasserstein(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """The Wasserstein (critic) loss: D maximises E[D(x)] - E[D(G(z))].

    The critic must be kept Lipschitz by other means: weight clipping (`loss.weight_clip`, as in the
    WGAN paper) or a gradient penalty (`penalty.name='wgan_gp'`, Gulrajani et al. 2017).

    Args:
      real_logits: critic outputs on real data, shape [B].
      fake_logits: critic outputs on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real' (0), 'g_fake'}.

    References:
      Arjovsky, Chintala, Bottou, "Wasserstein GAN", ICML 2017. https://arxiv.org/abs/1701.07875
    """
    r, f = _f32(real_logits, fake_logits)
    d_real = -jnp.mean(r)
    d_fake = jnp.mean(f)
    return _output(d_real, d_fake, -jnp.mean(f))


def hinge(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """The hinge loss: D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G minimises -E[D(G(z))].

    Args:
      real_logits: D's logits on real data, shape [B].
      fake_logits: D's logits on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real' (0), 'g_fake'}.

    References:
      Lim and Ye, "Geometric GAN", 2017. https://arxiv.org/abs/1705.02894 ;
      Miyato et al., "Spectral Normalization for GANs", ICLR 2018. https://arxiv.org/abs/1802.05957
    """
    r, f = _f32(real_logits, fake_logits)
    d_real = jnp.mean(jax.nn.relu(1.0 - r))
    d_fake = jnp.mean(jax.nn.relu(1.0 + f))
    return _output(d_real, d_fake, -jnp.mean(f))


def least_squares(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """The least-squares loss with targets a=0 (fake), b=1 (real), c=1 (what G wants).

    D minimises 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]; G minimises 1/2 E[(D(G(z)) - 1)^2].

    Args:
      real_logits: D's raw outputs on real data, shape [B].
      fake_logits: D's raw outputs on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real' (0), 'g_fake'}.

    References:
      Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.
      https://arxiv.org/abs/1611.04076
    """
    r, f = _f32(real_logits, fake_logits)
    d_real = 0.5 * jnp.mean(jnp.square(r - 1.0))
    d_fake = 0.5 * jnp.mean(jnp.square(f))
    return _output(d_real, d_fake, 0.5 * jnp.mean(jnp.square(f - 1.0)))


def relativistic_average(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """Relativistic average standard GAN (RaSGAN).

    D estimates how much more realistic a real sample is than the average fake, and vice versa:
    with r~ = C(x) - E[C(G(z))] and f~ = C(G(z)) - E[C(x)],
    d_loss = -E[log sigmoid(r~)] - E[log(1 - sigmoid(f~))] and
    g_loss = -E[log sigmoid(f~)] - E[log(1 - sigmoid(r~))]. Unlike the other losses, G's loss
    depends on the real logits too.

    Args:
      real_logits: D's logits on real data, shape [B].
      fake_logits: D's logits on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real', 'g_fake'}.

    References:
      Jolicoeur-Martineau, "The relativistic discriminator: a key element missing from standard
      GAN", ICLR 2019 (arXiv 2018). https://arxiv.org/abs/1807.00734
    """
    r, f = _f32(real_logits, fake_logits)
    r_rel = r - jnp.mean(f)
    f_rel = f - jnp.mean(r)
    d_real, d_fake = _bce_d_terms(r_rel, f_rel)
    g_real = jnp.mean(jax.nn.softplus(r_rel))
    g_fake = jnp.mean(jax.nn.softplus(-f_rel))
    return _output(d_real, d_fake, g_fake, g_real)


def relativistic_average_ls(real_logits: jax.Array, fake_logits: jax.Array) -> LossOutput:
    """Relativistic average least-squares GAN (RaLSGAN).

    With r~ = C(x) - E[C(G(z))] and f~ = C(G(z)) - E[C(x)]:
    d_loss = E[(r~ - 1)^2] + E[(f~ + 1)^2] and g_loss = E[(f~ - 1)^2] + E[(r~ + 1)^2].

    Args:
      real_logits: D's raw outputs on real data, shape [B].
      fake_logits: D's raw outputs on generated data, shape [B].

    Returns:
      (d_loss, g_loss, aux) with aux = {'d_real', 'd_fake', 'g_real', 'g_fake'}.

    References:
      Jolicoeur-Martineau, "The relativistic discriminator: a key element missing from standard
      GAN", ICLR 2019 (arXiv 2018). https://arxiv.org/abs/1807.00734
    """
    r, f = _f32(real_logits, fake_logits)
    r_rel = r - jnp.mean(f)
    f_rel = f - jnp.mean(r)
    d_real = jnp.mean(jnp.square(r_rel - 1.0))
    d_fake = jnp.mean(jnp.square(f_rel + 1.0))
    g_real = jnp.mean(jnp.square(r_rel + 1.0))
    g_fake = jnp.mean(jnp.square(f_rel - 1.0))
    return _output(d_real, d_fake, g_fake, g_real)


LOSSES: dict[str, LossFn] = {
    'minimax': minimax,
    'non_saturating': non_saturating,
    'wasserstein': wasserstein,
    'hinge': hinge,
    'least_squares': least_squares,
    'relativistic_average': relativistic_average,
    'relativistic_average_ls': relativistic_average_ls,
}

def _describe_output(out) -> str:
    return str(jax.tree.map(lambda a: f'{a.dtype}{list(a.shape)}', out))


def _check_loss_output(name: str, fn: LossFn) -> None:
    # Traced on abstract values (jax.eval_shape): nothing is computed, so this costs
    # milliseconds, and a loss that breaks the contract fails here rather than inside a step.
    logits = jax.ShapeDtypeStruct((4,), jnp.float32)
    where = f'register_loss({name!r}): {getattr(fn, "__qualname__", fn)}'
    try:
        out = jax.eval_shape(fn, logits, logits)
    except Exception as e:  # user code: say which loss failed and how
        raise ConfigError(f'{where} fails on float32 logits of shape [4]: '
                          f'{type(e).__name__}: {e}') from e
    scalar = lambda a: getattr(a, 'shape', None) == () and getattr(a, 'dtype', None) == jnp.float32
    ok = (isinstance(out, tuple) and len(out) == 3 and scalar(out[0]) and scalar(out[1])
          and isinstance(out[2], dict) and set(out[2]) == set(AUX_KEYS)
          and all(scalar(v) for v in out[2].values()))
    if not ok:
        raise ConfigError(
            f'{where} must return (d_loss, g_loss, aux): float32 scalars and aux = a dict of '
            f'float32 scalars with exactly the keys {list(AUX_KEYS)} (as every loss in LOSSES, '
            f'so that a population can switch between them); it returned {_describe_output(out)}')
    try:
        jax.eval_shape(jax.grad(lambda r, f: fn(r, f)[0] + fn(r, f)[1], argnums=(0, 1)),
                       logits, logits)
    except Exception as e:
        raise ConfigError(f'{where}: its losses cannot be differentiated with respect to the '
                          f'logits: {type(e).__name__}: {e}') from e


def register_loss(name: str, *, replace: bool = False) -> Callable[[LossFn], LossFn]:
    """Decorator that adds a loss to `LOSSES`, so that configs (`loss.name`), `build_gan` and a
    population's `loss_names` can name it.

    The function is checked once, here: it must take (real_logits, fake_logits) and return
    (d_loss, g_loss, aux) like the built-in losses (float32 scalars; aux with exactly the keys
    `AUX_KEYS`, where d_loss == d_real + d_fake and g_loss == g_real + g_fake), differentiably.
    Put the module that registers it in `config.imports`, so that a run that uses it can be
    resumed and sampled from its workdir alone.

    Example::

        @ganjax.register_loss('my_loss')
        def my_loss(real_logits, fake_logits):
            ...

    Args:
      name: the loss's name in `LOSSES`.
      replace: allow replacing an existing entry (built-in or registered).

    Returns:
      A decorator that registers its function and returns it unchanged.

    Raises:
      ConfigError: (from the decorator) for a taken name without `replace`, something not
        callable, a wrong signature, or an output that breaks the contract.
    """
    if callable(name):  # @register_loss without a name
        raise ConfigError('register_loss takes the name first, as @register_loss(\'my_loss\')')

    def decorator(fn: LossFn) -> LossFn:
        check_registration(LOSSES, name, fn, 'register_loss', ('real_logits', 'fake_logits'),
                           replace)
        _check_loss_output(name, fn)
        LOSSES[name] = fn
        return fn

    return decorator


#: The step's objective: (D's outputs on reals, on fakes, labels of reals, labels of fakes,
#: hyperparameters) -> (d_loss, g_loss, aux). D's outputs are the dicts of
#: `ganjax.models.layers.logit_head` ({'logit': [B], 'features': [B, F], 'class_logits': [B, K]
#: for the class heads}); labels are int [B] (-1 = unlabelled) or None.
ObjectiveFn = Callable[..., LossOutput]


def _logit(out) -> jax.Array:
    # Plain logits are accepted too, so that a loss can be tried on a bare array.
    return out['logit'] if isinstance(out, dict) else out


def adversarial_objective(loss_fns: tuple[LossFn, ...]) -> ObjectiveFn:
    """The objective of an unconditional or projection-conditional GAN: an adversarial loss of
    D's logits.

    Objectives whose terms read labels and further heads of D (`class_objective`) take the same
    arguments, so the step calls every objective the same way.

    Args:
      loss_fns: entries of `LOSSES`; with several, `hparams['loss_index']` chooses one per call
        (per member of a vmapped population) through `lax.switch`.

    Returns:
      `objective(real_out, fake_out, real_labels, fake_labels, hparams) -> (d_loss, g_loss, aux)`;
      the labels act through D's projection and are not read here.
    """
    loss_fns = tuple(loss_fns)
    if not loss_fns:
        raise ValueError('adversarial_objective needs at least one loss')

    def objective(real_out, fake_out, real_labels, fake_labels, hparams) -> LossOutput:
        del real_labels, fake_labels
        real, fake = _logit(real_out), _logit(fake_out)
        if len(loss_fns) == 1:
            return loss_fns[0](real, fake)
        # Every loss returns the same structure (AUX_KEYS), so one index chooses.
        return lax.switch(hparams['loss_index'], loss_fns, real, fake)

    return objective


def class_cross_entropy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of K-class logits over the examples that have a label.

    Args:
      class_logits: float [B, K].
      labels: int [B]; -1 marks an unlabelled example, which adds nothing.

    Returns:
      float32 scalar (0 when no example is labelled).
    """
    logits = jnp.asarray(class_logits, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)
    known = labels >= 0
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_p, jnp.maximum(labels, 0)[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(known, nll, 0.0)) / jnp.maximum(jnp.sum(known), 1)


def feature_matching(real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
    """Feature matching: ||E f(x) - E f(G(z))||^2 over D's last hidden features.

    Args:
      real_features: float [B, F] (no gradient reaches G through them).
      fake_features: float [B', F].

    Returns:
      float32 scalar.

    References:
      Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, section 3.1.
      https://arxiv.org/abs/1606.03498
    """
    real = lax.stop_gradient(jnp.mean(jnp.asarray(real_features, jnp.float32), axis=0))
    fake = jnp.mean(jnp.asarray(fake_features, jnp.float32), axis=0)
    return jnp.sum(jnp.square(real - fake))


#: Objectives by D head: what each adds to the adversarial loss.
CLASS_OBJECTIVES = ('logit', 'projection', 'acgan', 'kplus1')


def class_objective(adversarial: ObjectiveFn, head: str, *, feature_matching_g: bool = False,
                    labelled_rows: int = 0) -> ObjectiveFn:
    """The objective of a discriminator head (`ganjax.models.layers.logit_head`).

    - 'logit', 'projection': the adversarial loss alone.
    - 'acgan' (Odena et al. 2017, https://arxiv.org/abs/1610.09585): D and G both maximise the
      log-likelihood of the right class, L_C = log P(c | x_real) + log P(c | x_fake): D adds
      `class_weight` x (CE on reals + CE on fakes), G adds `class_weight` x CE on its fakes.
    - 'kplus1' (Salimans et al. 2016, https://arxiv.org/abs/1606.03498): the real-vs-fake logit is
      logsumexp of the K class logits; D adds `class_weight` x the cross-entropy of the labelled
      reals over the K real classes (unlabelled reals carry label -1 and add nothing).

    With `labelled_rows` = L > 0, the last L rows of every real batch are the labelled stream
    (`data.labelled_batch_size`): they train the classes, while only the rows before them enter
    the adversarial loss (and feature matching), so the few labelled examples do not outweigh the
    rest of the data as reals. With `feature_matching_g`, G's loss is `feature_matching` of D's
    features on reals and fakes instead of its adversarial loss.

    Args:
      adversarial: from `adversarial_objective`.
      head: one of `CLASS_OBJECTIVES`.
      feature_matching_g: G minimises feature matching.
      labelled_rows: static size of the labelled stream at the end of the real batch.

    Returns:
      An `ObjectiveFn`; its aux adds 'd_class' and 'g_class' (the cross-entropies, 0 where a
      head has none) and 'g_feature_matching' when used.
    """
    lookup({h: h for h in CLASS_OBJECTIVES}, head, 'model.d_head')
    zero = lambda: jnp.zeros((), jnp.float32)

    def unlabelled(out):
        if not labelled_rows:
            return out
        return jax.tree.map(lambda a: a[:-labelled_rows], out)

    def objective(real_out, fake_out, real_labels, fake_labels, hparams) -> LossOutput:
        real_adv = unlabelled(real_out)
        d_loss, g_loss, aux = adversarial(real_adv, fake_out, None, None, hparams)
        aux = dict(aux)
        weight = hparams['class_weight']
        d_class, g_class = zero(), zero()
        if head == 'acgan':
            d_class = (class_cross_entropy(real_out['class_logits'], real_labels)
                       + class_cross_entropy(fake_out['class_logits'], fake_labels))
            g_class = class_cross_entropy(fake_out['class_logits'], fake_labels)
        elif head == 'kplus1':
            d_class = class_cross_entropy(real_out['class_logits'], real_labels)
        if feature_matching_g:
            fm = feature_matching(real_adv['features'], fake_out['features'])
            aux['g_feature_matching'] = fm
            g_loss = fm
        aux['d_class'], aux['g_class'] = d_class, g_class
        return d_loss + weight * d_class, g_loss + weight * g_class, aux

    return objective


def get_loss(name: str) -> LossFn:
    """Looks a loss up by name.

    Args:
      name: a key of `LOSSES`.

    Returns:
      The loss function.

    Raises:
      ConfigError: if `name` is not in the table.
    """
    return lookup(LOSSES, name, 'loss.name')
