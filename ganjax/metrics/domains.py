"""Metrics of one kind of data, computed on samples in the data's own units.

The generic metrics of `ganjax.evaluate` (FID, KID, precision/recall, ...) compare feature
vectors. Some data has measures of its own that its users read first: the modes a 2D mixture's
samples cover, the per-gene statistics of expression profiles, the k-mer spectra and motif hits of
DNA sequences. A source declares which with its `domain` attribute (a key of `DOMAIN_METRICS`);
the Evaluator then keeps the real and generated samples of every evaluation, in the data's units
(`scaling.to_data`), and adds the domain's metrics to the generic ones, for the generator and for
the real-vs-real floor alike.

A domain may also draw its samples (`figure(real, real_labels, fake, fake_labels, class_names,
path)`), which `ganjax eval` writes beside its numbers, and add a breakdown to its JSON
(`details(real, real_labels, fake, fake_labels, class_names, names_of_features) -> dict`).

A domain's entry builds a `DomainMetrics` from the held-out source (which carries what the
metrics need: the mixture's centres, the genes, the motifs) and the run's config.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np


class DomainMetrics(Protocol):
    """The metrics of one kind of data, on samples in the data's units."""

    def names(self, num_classes: int) -> tuple[str, ...]:
        """The metric names `__call__` returns, for a generator over `num_classes` classes."""

    def __call__(self, real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray,
                 fake_labels: np.ndarray | None) -> dict[str, float]:
        """Scores `fake` against `real`.

        Args:
          real: held-out examples [n, ...] in the data's units.
          real_labels: their int32 labels [n] (-1: unlabelled).
          fake: examples to score [m, ...] (generated, or another real set for the floor).
          fake_labels: the classes a conditional generator made them for (or, for the floor,
            the real set's labels); None for an unconditional generator (and its floor).

        Returns:
          {name: value} for every name of `names`.
        """


class MixtureModes:
    """Mode coverage of samples of a 2D Gaussian mixture (`ganjax.metrics.modes`)."""

    def __init__(self, centers: np.ndarray, std: float):
        """Args: centers [K, d] and std of the mixture's modes."""
        self.centers = np.asarray(centers, np.float32)
        self.std = float(std)

    def names(self, num_classes: int) -> tuple[str, ...]:
        """modes_covered, high_quality, kl_to_uniform."""
        del num_classes
        return ('modes_covered', 'high_quality', 'kl_to_uniform')

    def __call__(self, real, real_labels, fake, fake_labels) -> dict[str, float]:
        """The mode statistics of `fake` (the real side is not needed: the modes are known)."""
        del real, real_labels, fake_labels
        from ganjax.metrics.modes import mode_statistics  # noqa: PLC0415
        modes = mode_statistics(fake, self.centers, self.std)
        return {k: float(modes[k]) for k in self.names(0)}


def _sequence(source: Any, config: Any) -> DomainMetrics:
    from ganjax.metrics import sequence  # noqa: PLC0415 (DNA runs only)
    return sequence.build(source, config)


def _mixture(source: Any, config: Any) -> DomainMetrics:
    del config
    return MixtureModes(source.centers, source.std)


def _expression(source: Any, config: Any) -> DomainMetrics:
    from ganjax.metrics.expression import ExpressionMetrics  # noqa: PLC0415
    return ExpressionMetrics(source, int(config.seed))


#: source.domain -> builder(held-out source, run config) -> DomainMetrics. Sources without a
#: `domain` (or with one not listed) get the generic metrics only.
DOMAIN_METRICS: dict[str, Callable[[Any, Any], DomainMetrics]] = {
    'mixture': _mixture,
    'expression': _expression,
    'sequence': _sequence,
}


def domain_metrics(source: Any, config: Any) -> DomainMetrics | None:
    """The `DomainMetrics` a source's `domain` names, or None.

    Args:
      source: the held-out source.
      config: the run's config.

    Returns:
      The metrics object, or None for a source without domain metrics.
    """
    builder = DOMAIN_METRICS.get(getattr(source, 'domain', ''))
    return None if builder is None else builder(source, config)
