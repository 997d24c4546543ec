"""Exceptions that ganjax raises for bad input, each with a message a user can act on."""


class GanjaxError(Exception):
    """Base class of the errors ganjax raises on purpose."""


class ConfigError(GanjaxError, ValueError):
    """A config key, value or combination of values that ganjax cannot use."""


class DataError(GanjaxError, ValueError):
    """A dataset that is missing, empty, corrupt or holds values a model cannot train on."""


class NonFiniteError(GanjaxError, FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite during training."""
