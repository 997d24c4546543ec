"""ganjax: high-performance GAN research in JAX.

Modules: `models` (generators and discriminators by name), `losses` and `penalties` (tables of pure
functions; `ganjax.register_loss` and `ganjax.register_penalty` add a user's own), `train_step`
(the pure adversarial step), `dynamics` (how the players' updates are ordered), `data` (datasets
by name), `train` (the loop).
"""

__version__ = '0.1.0'

# `ganjax.register_loss` and `ganjax.register_penalty` are resolved on first use: `import ganjax`
# stays free of jax, so the CLI can refuse a bad config file before jax loads (seconds).
_LAZY = {'register_loss': 'ganjax.losses', 'register_penalty': 'ganjax.penalties'}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
