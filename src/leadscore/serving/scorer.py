"""Scoring open leads with a registered model: probability, grade, percentile and the reasons, in words.

:class:`Scorer` is built once (``Scorer.from_registry("champion")``: one registry look-up, one download, then
cached per tracking store and version) and then scores without touching MLflow, so an API can keep one and call
it per request. A single lead costs one pass through the pipeline: the probability is computed from the same
exact log-odds decomposition that gives the reasons.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from leadscore import registry
from leadscore.features.catalogue import attributes_used, describe, feature_spec
from leadscore.features.phrases import check_language, reason_topic
from leadscore.grades import (
    DEFAULT_GRADE_CUTOFFS,
    batch_percentiles,
    check_grade_cutoffs,
    grades,
    reference_percentiles,
)
from leadscore.model.compiled import compile_model
from leadscore.model.explain import TOP_REASONS, explain, table_phrase, top_reasons
from leadscore.registry import CHAMPION, ModelCard

OUTPUT_COLUMNS: tuple[str, ...] = (
    "lead_id",
    "probability",
    "grade",
    "percentile",
    "reasons_up",
    "reasons_down",
    "model_version",
    "cutoff",
    "provisional",
)

# Phrases remembered per scorer: (feature, value) pairs, a few hundred bytes each.
PHRASE_CACHE_SIZE = 50_000

_CACHE: dict[tuple[str, str], tuple[object, ModelCard]] = {}
_CACHE_LOCK = threading.Lock()


def _remembered(phrase: Callable[[str, object], str]) -> Callable[[str, object], str]:
    """``phrase`` with a bounded memory: the same few thousand (feature, value) pairs recur in every batch."""
    remembered = functools.lru_cache(maxsize=PHRASE_CACHE_SIZE)(phrase)

    def say(name: str, value: object) -> str:
        try:
            return remembered(name, value)
        except TypeError:  # an unhashable value
            return phrase(name, value)

    return say


class Scorer:
    """Scores leads with one model version.

    Parameters
    ----------
    model : estimator
        A fitted leadscore model (from :func:`leadscore.registry.load_version` or a training result).
    card : ModelCard
        What the model was trained on (source, feature kinds, horizon, ...).
    grade_cutoffs : sequence of (letter, probability floor), default=DEFAULT_GRADE_CUTOFFS
        From the highest grade down; leads below every floor get D.
    n_reasons : int, default=3
        Reasons up and down per lead.

    Examples
    --------
    >>> scorer = Scorer.from_registry("champion")  # doctest: +SKIP
    >>> scorer.score(data.leads, data.events, "2025-06-30").columns.tolist()[:4]  # doctest: +SKIP
    ['lead_id', 'probability', 'grade', 'percentile']
    """

    def __init__(
        self,
        model,
        card: ModelCard,
        *,
        grade_cutoffs: Sequence[tuple[str, float]] = DEFAULT_GRADE_CUTOFFS,
        n_reasons: int = TOP_REASONS,
    ):
        self.model = model
        self.card = card
        self.grade_cutoffs = check_grade_cutoffs(grade_cutoffs)
        self.n_reasons = n_reasons
        self.features = list(getattr(model, "feature_names_in_", card.kinds))
        # The same contributions as explain(), from lookup tables instead of the pipeline (much faster per call).
        self._compiled = compile_model(model)
        self._reference = np.asarray(card.reference_quantiles, dtype=float)
        # CRM features are said in the reader's language, and the features telling one fact are one reason.
        self._topic = reason_topic if card.source == "crm" else None
        self._phrases = {"en": _remembered(describe if card.source == "crm" else table_phrase)}
        #: The lead attributes the model reads (by their CRM names): scoring reads these and no other.
        self.attributes: list[str] = attributes_used(self.features) if card.source == "crm" else []

    @classmethod
    def from_registry(cls, alias: str = CHAMPION, tracking_uri: str | None = None, **options) -> Scorer:
        """The scorer of the version that ``alias`` (or a version number) points to now.

        Models are cached per (tracking store, version): building a scorer again after the alias moved loads
        only the new version.
        """
        uri = registry.tracking_uri(tracking_uri)
        version = registry.resolve_version(alias, uri)
        key = (uri, version)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = registry.load_version(version, uri)
            model, card = _CACHE[key]
        return cls(model, card, **options)

    def _phrase(self, lang: str) -> Callable[[str, object], str]:
        """How this model's features are said in ``lang`` (a flat table's columns are said as they are)."""
        if lang not in self._phrases:
            check_language(lang)
            if self.card.source == "crm":
                self._phrases[lang] = _remembered(lambda name, value: feature_spec(name).say(value, lang=lang))
            else:
                self._phrases[lang] = self._phrases["en"]
        return self._phrases[lang]

    @property
    def model_version(self) -> str:
        return self.card.version

    @property
    def provisional(self) -> bool:
        """True for a cold-start model: its scores are provisional."""
        return bool(self.card.cold_start)

    def score(self, leads: pd.DataFrame, events: pd.DataFrame, cutoff, *, percentile_of: str = "batch"):
        """Build the features of the leads open at ``cutoff`` from their history, then score them."""
        if self.card.source != "crm":
            raise ValueError(
                f"model version {self.model_version} was trained on a flat table, not on CRM events: "
                "use score_features with the table's columns"
            )
        from leadscore.serving.prioritize import features_for

        frame, _ = features_for(self, leads, events, cutoff)
        return self.score_features(frame, percentile_of=percentile_of)

    def score_features(
        self,
        frame: pd.DataFrame,
        *,
        cutoff=None,
        percentile_of: str = "batch",
        reasons: bool = True,
        lang: str = "en",
    ) -> pd.DataFrame:
        """Score rows that already hold the model's input columns (a feature frame, or a flat table's rows).

        Parameters
        ----------
        frame : DataFrame
            The model's input columns, plus optionally ``lead_id`` and ``cutoff`` (else the index and
            ``cutoff`` are used).
        percentile_of : {"batch", "reference"}
            Percentile among the leads scored together, or within the validation-period scores the model was
            chosen on (useful for a single lead).
        reasons : bool, default=True
            False leaves ``reasons_up`` and ``reasons_down`` empty and computes only the probabilities (bulk
            scoring: about twice as fast).
        lang : {"en", "es"}, default="en"
            The language of the reasons.

        Returns
        -------
        DataFrame
            ``lead_id``, ``probability``, ``grade``, ``percentile`` (0-100), ``reasons_up`` and ``reasons_down``
            (lists of phrases), ``model_version``, ``cutoff`` and ``provisional``.
        """
        absent = [c for c in self.features if c not in frame.columns]
        if absent:
            raise ValueError(f"column(s) {absent[:10]} missing from the rows to score (model {self.model_version})")
        n = len(frame)
        if n == 0:
            return pd.DataFrame({c: [] for c in OUTPUT_COLUMNS})
        ids = frame["lead_id"].to_numpy() if "lead_id" in frame.columns else frame.index.to_numpy()
        if "cutoff" in frame.columns:
            cutoffs = frame["cutoff"].to_numpy()
        else:
            cutoffs = np.full(n, pd.Timestamp(cutoff, tz="UTC") if cutoff is not None else pd.NaT)
        return pd.DataFrame(self._score(frame[self.features], n, ids, cutoffs, percentile_of, reasons, lang))

    def score_columns(
        self,
        columns: Mapping[str, np.ndarray],
        ids: Sequence[object],
        *,
        cutoff=None,
        percentile_of: str = "batch",
        reasons: bool = True,
        lang: str = "en",
    ) -> dict[str, object]:
        """:meth:`score_features` for rows already typed as arrays by column (numbers as floats, text as objects),
        returning plain columns by name (the ``OUTPUT_COLUMNS``): the API's path, with no frame built either way.

        ``reasons=False`` leaves the reasons empty and computes only the probabilities, for bulk scoring.
        """
        absent = [c for c in self.features if c not in columns]
        if absent:
            raise ValueError(f"column(s) {absent[:10]} missing from the rows to score (model {self.model_version})")
        n = len(ids)
        stamp = None if cutoff is None else pd.Timestamp(cutoff)
        if stamp is not None:
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        cutoffs = [stamp] * n
        return self._score({c: columns[c] for c in self.features}, n, list(ids), cutoffs, percentile_of, reasons, lang)

    def _score(self, X, n: int, ids, cutoffs, percentile_of: str, reasons: bool, lang: str) -> dict[str, object]:
        if percentile_of not in ("batch", "reference"):
            raise ValueError(f"percentile_of must be 'batch' or 'reference', got {percentile_of!r}")
        compiled = self._compiled
        if compiled is None and not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X)  # the pipeline takes frames
        if not reasons:
            probability = compiled.predict_proba(X) if compiled is not None else self.model.predict_proba(X)[:, 1]
            up, down = [[] for _ in range(n)], [[] for _ in range(n)]
        else:
            contributions = compiled.explain(X) if compiled is not None else explain(self.model, X)
            if compiled is not None:
                probability = compiled.probability(contributions)
            elif contributions.exact:
                probability = expit(contributions.log_odds)
            else:
                probability = self.model.predict_proba(X)[:, 1]
            up, down = top_reasons(contributions, X, self._phrase(lang), self.n_reasons, self._topic)
        if percentile_of == "batch":
            percentile = batch_percentiles(probability)
        else:
            percentile = reference_percentiles(probability, self._reference)
        return {
            "lead_id": ids,
            "probability": probability,
            "grade": grades(probability, self.grade_cutoffs),
            "percentile": percentile,
            "reasons_up": up,
            "reasons_down": down,
            "model_version": [self.model_version] * n,
            "cutoff": cutoffs,
            "provisional": [self.provisional] * n,
        }
