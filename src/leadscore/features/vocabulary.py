"""The vocabulary of unknown event types: which types the catalogue does not know get features of their own.

Real CRMs keep most of their history in types of their own (custom activities, workflow steps). Each type in
the vocabulary (``extra_types``) gets what a known type gets: counts over 7, 30 and 90 days and in all, days
since the last one, a momentum, and a category of its own in ``last_event_type`` / ``previous_event_type``
(:mod:`leadscore.features.catalogue`); the types outside it are counted together as "other".

The rule (:class:`VocabularyRule`): the unknown types that make up at least ``min_share`` of all the events
known at ``before`` (every type counted, known ones too), the most frequent first, at most ``max_types`` of them,
ties broken by name. Choose it from the training events only (``before`` = the last training cutoff), record it
with the model and score with the same vocabulary, so that the features mean the same at scoring.

Examples
--------
>>> import pandas as pd
>>> events = pd.DataFrame({"type": ["call"] * 90 + ["webinar"] * 8 + ["chat"] * 2,
...                        "at": pd.to_datetime(["2024-01-01"] * 100, utc=True)})
>>> choose_event_vocabulary(events, rule=VocabularyRule(min_share=0.05)).types
('webinar',)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from leadscore.data.contracts import KNOWN_EVENT_TYPES
from leadscore.features.history import cutoff_timestamp, require_columns, to_ns

MIN_SHARE = 0.01
MAX_TYPES = 30


@dataclass(frozen=True)
class VocabularyRule:
    """How the vocabulary of unknown event types is chosen: a share of the events, and a bound on its size.

    Parameters
    ----------
    min_share : float
        The least share of all events (known types included) a type must make up, in [0, 1].
    max_types : int
        The most types kept (the most frequent); bounds the number of feature columns (six per type).

    Examples
    --------
    >>> VocabularyRule().describe()
    'unknown event types with at least 1% of the events, at most 30'
    """

    min_share: float = MIN_SHARE
    max_types: int = MAX_TYPES

    def __post_init__(self) -> None:
        if not 0 <= self.min_share <= 1:
            raise ValueError(f"min_share must be in [0, 1], got {self.min_share}")
        if isinstance(self.max_types, bool) or not isinstance(self.max_types, int) or self.max_types < 0:
            raise ValueError(f"max_types must be a whole number at least 0, got {self.max_types!r}")

    def describe(self) -> str:
        return f"unknown event types with at least {100 * self.min_share:.4g}% of the events, at most {self.max_types}"


@dataclass(frozen=True)
class EventVocabulary:
    """A vocabulary chosen by a rule, with what it was chosen from: what a training run records.

    Attributes
    ----------
    types : tuple of str
        The chosen unknown types, the most frequent first (the ``extra_types`` of the builder).
    rule : VocabularyRule
        The rule that chose them.
    before : Timestamp or None
        The events counted were those at or before it (None: all).
    n_events : int
        How many events were counted.
    covered : float
        The share of those events whose type is in the vocabulary.
    unknown : float
        The share of those events of a type the catalogue does not know.
    """

    types: tuple[str, ...]
    rule: VocabularyRule
    before: pd.Timestamp | None
    n_events: int
    covered: float
    unknown: float

    def __iter__(self):
        """The types, so that a vocabulary serves wherever a sequence of ``extra_types`` is taken."""
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)

    def describe(self) -> str:
        """One sentence for the run's notes: the rule, what it counted and what it chose."""
        when = "all events" if self.before is None else f"the {self.n_events:,} events known at {self.before}"
        chosen = ", ".join(self.types) if self.types else "none"
        return (
            f"event vocabulary ({self.rule.describe()}, counted on {when}): {len(self.types)} types covering "
            f"{100 * self.covered:.1f}% of the events ({100 * self.unknown:.1f}% of unknown type): {chosen}"
        )

    def params(self) -> dict[str, str]:
        """The vocabulary and its rule as MLflow run parameters (each value within MLflow's 6,000 characters)."""
        return {
            "extra_types": ",".join(self.types)[:6000] or "none",
            "extra_types_count": str(len(self.types)),
            "extra_types_min_share": f"{self.rule.min_share:g}",
            "extra_types_max_types": str(self.rule.max_types),
            "extra_types_counted_until": "all events" if self.before is None else str(self.before),
            "extra_types_coverage": f"{self.covered:.4f}",
        }


def event_type_counts(events: pd.DataFrame, *, before: object = None) -> pd.Series:
    """How many events of each type happened at or before ``before`` (all events if None), missing types left out.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"type": ["call", "chat", "chat"],
    ...                        "at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-03-01"], utc=True)})
    >>> event_type_counts(events, before="2024-02-01").to_dict()
    {'call': 1, 'chat': 1}
    """
    require_columns(events, ("type",), "events")
    types = events["type"]
    if before is not None:
        require_columns(events, ("at",), "events")
        types = types[to_ns(events["at"], "events.at", allow_missing=False) <= cutoff_timestamp(before).value]
    return types[types.notna()].astype("str").value_counts().rename("events")


def choose_from_counts(counts: pd.Series, rule: VocabularyRule = VocabularyRule()) -> tuple[str, ...]:
    """The vocabulary from per-type event counts (indexed by type): the rule applied, ties broken by name.

    Shared by pandas (:func:`choose_event_vocabulary`) and Spark (which counts on the cluster).

    Examples
    --------
    >>> import pandas as pd
    >>> choose_from_counts(pd.Series({"call": 50, "b": 25, "a": 25}), VocabularyRule(max_types=1))
    ('a',)
    """
    total = int(counts.sum())
    unknown = [(str(t), int(n)) for t, n in counts.items() if str(t) not in KNOWN_EVENT_TYPES and n > 0]
    frequent = [(t, n) for t, n in unknown if n >= rule.min_share * total]
    ranked = sorted(frequent, key=lambda item: (-item[1], item[0]))
    return tuple(t for t, _ in ranked[: rule.max_types])


def vocabulary_from_counts(
    counts: pd.Series, rule: VocabularyRule = VocabularyRule(), *, before: object = None
) -> EventVocabulary:
    """The :class:`EventVocabulary` that ``rule`` chooses from per-type event counts counted at ``before``."""
    types = choose_from_counts(counts, rule)
    total = int(counts.sum())
    is_unknown = [str(t) not in KNOWN_EVENT_TYPES for t in counts.index]
    return EventVocabulary(
        types=types,
        rule=rule,
        before=None if before is None else cutoff_timestamp(before),
        n_events=total,
        covered=float(counts[counts.index.isin(types)].sum() / total) if total else 0.0,
        unknown=float(counts[is_unknown].sum() / total) if total else 0.0,
    )


def choose_event_vocabulary(
    events: pd.DataFrame, *, before: object = None, rule: VocabularyRule = VocabularyRule()
) -> EventVocabulary:
    """Choose the vocabulary of unknown event types from the events known at ``before`` (all if None).

    Parameters
    ----------
    events : DataFrame
        At least ``type`` (and ``at`` when ``before`` is given).
    before : timestamp-like, optional
        Count only the events at or before it: the last training cutoff, so that no later event decides.
    rule : VocabularyRule
        The least share of the events and the most types.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"type": ["act_1"] * 5 + ["act_2"] * 3 + ["act_3"],
    ...                        "at": pd.to_datetime(["2024-01-01"] * 8 + ["2024-05-01"], utc=True)})
    >>> choose_event_vocabulary(events, before="2024-02-01").types
    ('act_1', 'act_2')
    """
    return vocabulary_from_counts(event_type_counts(events, before=before), rule, before=before)
