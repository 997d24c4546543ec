"""Exceptions that ganjax raises for bad input, each with a message a user can act on."""

import difflib
from typing import Mapping, TypeVar

T = TypeVar('T')



class GanjaxError(Exception):
    """Base class of the errors ganjax raises on purpose."""


class ConfigError(GanjaxError, ValueError):
    """A config key, value or combination of values that ganjax cannot use."""


class DataError(GanjaxError, ValueError):
    """A dataset that is missing, empty, corrupt or holds values a model cannot train on."""


class NonFiniteError(GanjaxError, FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite during training."""


def lookup(table: Mapping[str, T], name: str, key: str) -> T:
    """Looks `name` up in a table of choices (losses, penalties, ...) chosen by a config key.

    Args:
      table: name -> entry.
      name: the name asked for.
      key: the config key that named it, for the message (e.g. 'loss.name').

    Returns:
      The entry.

    Raises:
      ConfigError: naming the key, the value, the choices and the closest ones.
    """
    if name in table:
        return table[name]
    raise ConfigError(f'{key}={name!r} is not one of {sorted(table)}{closest_hint(name, table)}')


def closest_hint(name: str, names) -> str:
    """' (did you mean a, b?)' for the names closest to a misspelt one, or ''."""
    close = difflib.get_close_matches(str(name), [str(n) for n in names], n=3, cutoff=0.6)
    return f' (did you mean {", ".join(close)}?)' if close else ''
