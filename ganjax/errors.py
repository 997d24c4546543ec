"""Exceptions that ganjax raises for bad input, each with a message a user can act on."""

import difflib
import inspect
from typing import Any, Mapping, MutableMapping, TypeVar

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


def check_registration(table: MutableMapping[str, Any], name: str, fn: Any, what: str,
                       params: tuple[str, ...], replace: bool) -> None:
    """The checks every `register_*` decorator makes before it adds `fn` to its table.

    Args:
      table: the table `fn` goes into.
      name: the name asked for.
      fn: the function registered.
      what: the decorator, for the message (e.g. 'register_loss').
      params: the positional arguments the table's functions are called with.
      replace: whether an existing entry may be replaced.

    Raises:
      ConfigError: for a name that is not a non-empty string, an existing name (without
        `replace`), something that is not callable, or a function that cannot be called with
        `params`.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f'{what} takes the name first, as @{what}(\'my_name\'); got '
                          f'{name!r}')
    if name in table and not replace:
        raise ConfigError(f'{what}({name!r}): the name is taken (by {_qualname(table[name])}); '
                          'choose another, or pass replace=True to replace it')
    if not callable(fn):
        raise ConfigError(f'{what}({name!r}) decorates {fn!r}, which is not callable')
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins and C callables have no signature
        return
    try:
        signature.bind(*params)
    except TypeError as e:
        raise ConfigError(f'{what}({name!r}): {_qualname(fn)}{signature} cannot be called as '
                          f'fn({", ".join(params)}): {e}') from None


def _qualname(fn: Any) -> str:
    module = getattr(fn, '__module__', None)
    name = getattr(fn, '__qualname__', None) or repr(fn)
    return f'{module}.{name}' if module else name
