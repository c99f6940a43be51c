"""Percentiles and grades: how a probability is placed and lettered, shared by the scorer, Spark and the settings.

One definition of each, so that the API, ``leadscore score`` and batch scoring on Spark give a lead the same
grade and the same percentile: :func:`grades` (and :func:`check_grade_cutoffs`, the one check of a set of
cut-offs, which the service's settings also apply when they are read), :func:`batch_percentiles` and
:func:`percent` (a lead's place among the leads scored with it) and :func:`reference_percentiles` (its place among
the validation scores the model was chosen on). Spark calls them inside its pandas UDFs.

This module sits below the settings in the layering (``pyproject.toml``): it needs nothing but numpy and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Grade = the first letter whose probability floor the lead reaches, from the highest down; below all: D.
DEFAULT_GRADE_CUTOFFS: tuple[tuple[str, float], ...] = (("A", 0.5), ("B", 0.25), ("C", 0.1))
LOWEST_GRADE = "D"
#: Relative tolerance of a probability against the reference scores (see :func:`reference_percentiles`).
PERCENTILE_TOLERANCE = 1e-9


def check_grade_cutoffs(cutoffs: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """``cutoffs`` as a tuple of (letter, probability floor), or ``ValueError`` unless the floors are probabilities
    that decrease strictly (the highest grade first).

    Examples
    --------
    >>> check_grade_cutoffs([("A", 0.6), ("B", 0.2)])
    (('A', 0.6), ('B', 0.2))
    >>> check_grade_cutoffs([("A", 0.2), ("B", 0.4)])
    Traceback (most recent call last):
    ...
    ValueError: grade cut-offs must decrease and be probabilities in [0, 1], highest first; got [('A', 0.2), ('B', 0.4)]
    """
    cutoffs = tuple((letter, floor) for letter, floor in cutoffs)
    floors = [floor for _, floor in cutoffs]
    if any(not 0.0 <= f <= 1.0 for f in floors) or any(a <= b for a, b in zip(floors, floors[1:], strict=False)):
        raise ValueError(
            f"grade cut-offs must decrease and be probabilities in [0, 1], highest first; got {list(cutoffs)}"
        )
    return cutoffs


def grades(probability: np.ndarray, cutoffs: Sequence[tuple[str, float]] = DEFAULT_GRADE_CUTOFFS) -> np.ndarray:
    """Letter grades for probabilities: the first cut-off reached (cut-offs from the highest down), else D.

    Examples
    --------
    >>> grades(np.array([0.7, 0.3, 0.12, 0.01])).tolist()
    ['A', 'B', 'C', 'D']
    """
    cutoffs = check_grade_cutoffs(cutoffs)
    p = np.asarray(probability, dtype=float)
    return np.select([p >= floor for _, floor in cutoffs], [letter for letter, _ in cutoffs], LOWEST_GRADE)


def percent(at_or_below: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """The share of a batch of ``n`` scores at or below each one, in percent with one decimal.

    Examples
    --------
    >>> percent(np.array([1, 3, 4]), 4).tolist()
    [25.0, 75.0, 100.0]
    """
    return np.round(np.asarray(at_or_below, dtype=float) / np.asarray(n, dtype=float) * 100, 1)


def batch_percentiles(probability: np.ndarray) -> np.ndarray:
    """Each probability's percentile among the batch (the share at or below it), with one decimal.

    Examples
    --------
    >>> batch_percentiles(np.array([0.2, 0.9, 0.2, 0.5])).tolist()
    [50.0, 100.0, 50.0, 75.0]
    """
    p = np.asarray(probability, dtype=float)
    return percent(pd.Series(p).rank(method="max").to_numpy(), len(p))


def reference_percentiles(probability: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Each probability's percentile among sorted reference scores (the share at or below it), with one decimal.

    The reference scores are the model's own outputs, and a lead's probability may differ from the same value in
    its last bits (computed another way, e.g. compiled, or on Spark): a relative tolerance
    (:data:`PERCENTILE_TOLERANCE`) keeps it on the same step.

    Examples
    --------
    >>> reference_percentiles(np.array([0.1, 0.3 * (1 - 1e-12), 0.95]), [0.1, 0.3, 0.5, 0.9]).tolist()
    [25.0, 50.0, 100.0]
    """
    quantiles = np.asarray(reference, dtype=float)
    tolerant = np.asarray(probability, dtype=float) * (1 + PERCENTILE_TOLERANCE)
    return percent(np.searchsorted(quantiles, tolerant, side="right"), len(quantiles))
