"""Game dynamics: how the two players' updates are ordered within a step (`train.updates`).

- 'alternating': `train.n_critic` D updates, then G's update against the updated D (the usual GAN
  training loop since Goodfellow et al. 2014).
- 'simultaneous': G's gradient is taken against D's parameters and collections from before this
  step's D updates, so with n_critic = 1 both players' gradients are taken at the same point
  (simultaneous gradient descent; Mescheder et al. 2017, "The Numerics of GANs",
  https://arxiv.org/abs/1705.10461, contrast it with the alternating updates).
- 'extragradient': both players take an extrapolation step from the current point, and the
  gradients at the extrapolated point update the current parameters (`extragradient_step`;
  Korpelevich 1976; Gidel et al., "A Variational Inequality Perspective on Generative Adversarial
  Networks", ICLR 2019, https://arxiv.org/abs/1802.10551).

The choice is static (it fixes the program); every number it uses comes from the state, so each
dynamics stays pure and vmappable over a population.
"""

from typing import Any, Callable

import optax

from ganjax.errors import ConfigError

#: The values of `train.updates`.
UPDATES = ('alternating', 'simultaneous', 'extragradient')

Params = tuple[Any, ...]
# (players' parameters) -> (each player's gradient of its own loss, auxiliary outputs).
GradFn = Callable[[Params], tuple[Params, Any]]


def check_updates(updates: str, n_critic: int) -> None:
    """Refuses a combination of `train.updates` and `train.n_critic` that has no meaning.

    Extragradient is a step of the game's joint vector field: both players' gradients at one
    point, an extrapolation of both, both gradients again. n_critic > 1 makes D's update an inner
    loop of several D steps per G step, which the method does not define (which of the D steps
    would be extrapolated, and against which G?), so it is refused rather than guessed.

    Args:
      updates: `train.updates`.
      n_critic: `train.n_critic`.

    Raises:
      ConfigError: for an unknown name, or extragradient with n_critic > 1.
    """
    if updates not in UPDATES:
        raise ConfigError(f'train.updates={updates!r} is not one of {list(UPDATES)}')
    if updates == 'extragradient' and n_critic != 1:
        raise ConfigError(f"train.updates='extragradient' needs train.n_critic=1, got "
                          f'{n_critic}: an extragradient step extrapolates both players once '
                          'from the same point, which several D updates per G update do not '
                          'define')


def extragradient_step(grad_fn: GradFn, params: Params, opt_states: Params,
                       txs: tuple[optax.GradientTransformation, ...],
                       project: Callable[[Params], Params] | None = None
                       ) -> tuple[Params, Params, Any, Any]:
    """One extragradient step of an n-player game, each player with its own optimizer.

    With w the players' parameters and F(w) their gradients, each player's optimizer turns F(w)
    into an update u: the extrapolated point is w' = w + u(F(w)) (optimizer states not
    committed), and the step is w_new = w + u(F(w')), which advances the optimizer states once.
    With SGD of rate eta this is Korpelevich's w' = w - eta F(w), w_new = w - eta F(w'); with
    Adam, the extrapolation and the update both read the moments of the step's start.

    Stochastic extragradient here evaluates both gradients on the same sample (the step's one
    batch): the same-sample variant of Mishchenko et al., "Revisiting Stochastic Extragradient",
    AISTATS 2020 (https://arxiv.org/abs/1905.11373).

    Args:
      grad_fn: params -> (grads, aux): every player's gradient of its own loss at `params`
        (a tuple with one entry per player), and anything else to keep.
      params: the players' parameters (a tuple of pytrees).
      opt_states: the players' optimizer states.
      txs: the players' optimizers.
      project: applied to the extrapolated and to the new parameters (a projected method, e.g.
        WGAN's weight clipping); None = identity.

    Returns:
      (new params, new optimizer states, aux at `params`, aux at the extrapolated point).

    References:
      Korpelevich, "The extragradient method for finding saddle points and other problems",
      Ekonomika i Matematicheskie Metody 12, 1976; Gidel et al., ICLR 2019,
      https://arxiv.org/abs/1802.10551
    """
    project = project or (lambda p: p)

    def move(grads):
        out = [tx.update(g, s, p) for tx, g, s, p in zip(txs, grads, opt_states, params)]
        new = tuple(optax.apply_updates(p, u) for p, (u, _) in zip(params, out))
        return project(new), tuple(s for _, s in out)

    grads, aux_here = grad_fn(params)
    extrapolated, _ = move(grads)  # the extrapolation's optimizer states are dropped
    grads, aux_there = grad_fn(extrapolated)
    new_params, new_states = move(grads)
    return new_params, new_states, aux_here, aux_there
