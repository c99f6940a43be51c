"""The model's end-to-end steps, one call each, for the CLI, the demo and notebooks.

:func:`crm_training_data` turns a CRM data set into labelled snapshots with the vocabulary of unknown event
types (chosen from the training events only) that scoring will use; :func:`train_and_register` trains, logs to
MLflow, registers and applies the promotion gate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from leadscore.data.contracts import CrmData
from leadscore.features.vocabulary import EventVocabulary, VocabularyRule
from leadscore.model.splits import VALIDATION_FRACTION, LabelledData
from leadscore.model.training import DEFAULT_HORIZON_DAYS, TrainingResult, train, training_data_from_crm
from leadscore.registry import Registered, register


def crm_training_data(
    data: CrmData,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    drop=(),
    validation_fraction: float = VALIDATION_FRACTION,
    vocabulary_rule: VocabularyRule | None = None,
    attributes=None,
) -> tuple[LabelledData, EventVocabulary]:
    """Labelled snapshots of ``data`` and the vocabulary of unknown event types they (and scoring) use.

    The vocabulary is chosen by ``vocabulary_rule`` (default :class:`VocabularyRule`: types with at least 1 % of
    the events, at most 30) from the events known at the last cutoff training learns from, with the same
    ``validation_fraction`` as :func:`leadscore.model.training.train` (give it the same). Its description is
    added to the data's notes (so to the run's training summary); :func:`train_and_register` logs it as
    parameters and the model card keeps its types.

    ``attributes`` (an :class:`~leadscore.model.attribute_selection.AttributeSelection`) bounds the lead
    attributes the model uses; ``drop`` names features to leave out (an attribute as ``attr_{name}``).

    Examples
    --------
    >>> labelled, vocabulary = crm_training_data(load_dataset("data/demo"))  # doctest: +SKIP
    >>> vocabulary.types  # doctest: +SKIP
    ('webinar', 'chat')
    """
    from leadscore.model.event_vocabulary import training_vocabulary

    vocabulary = training_vocabulary(
        data,
        horizon_days=horizon_days,
        validation_fraction=validation_fraction,
        rule=vocabulary_rule or VocabularyRule(),
    )
    labelled = training_data_from_crm(
        data, horizon_days=horizon_days, extra_types=vocabulary.types, attributes=attributes
    )
    labelled.notes.append(vocabulary.describe())
    # A lead attribute may be named as the CRM calls it (``--drop crm_ref``) when no feature has that name.
    columns = set(labelled.X.columns)
    drop = [f"attr_{d}" if d not in columns and f"attr_{d}" in columns else d for d in drop]
    return labelled.without_features(drop), vocabulary


def train_and_register(
    labelled: LabelledData,
    *,
    extra_types: Sequence[str] | EventVocabulary = (),
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
    policy=None,
    **train_options,
) -> tuple[TrainingResult, Registered]:
    """Train on labelled data, log and register the model, and let the gate decide on ``champion``.

    ``policy`` may overrule the gate (:data:`leadscore.registry.gate.Policy`: the retraining rules).
    ``train_options`` go to :func:`leadscore.model.training.train` (candidates, calibration, allow_leaky, ...).

    Examples
    --------
    >>> labelled, extra = crm_training_data(load_dataset("data/demo"))  # doctest: +SKIP
    >>> result, registered = train_and_register(labelled, extra_types=extra)  # doctest: +SKIP
    >>> registered.promoted, registered.reason  # doctest: +SKIP
    (True, 'no champion yet')
    """
    result = train(labelled, progress=progress, **train_options)
    catalogue_version = None
    if labelled.source == "crm":
        from leadscore.features.catalogue import CATALOGUE_VERSION

        catalogue_version = CATALOGUE_VERSION
    if progress:
        progress("logging the run to MLflow and applying the promotion gate")
    # A vocabulary chosen by crm_training_data says how it was chosen; a plain sequence of types only what it is.
    vocabulary_params = (
        extra_types.params()
        if isinstance(extra_types, EventVocabulary)
        else {"extra_types": ",".join(map(str, extra_types))[:6000] or "none"}
    )
    registered = register(
        result,
        uri=tracking_uri,
        policy=policy,
        catalogue_version=catalogue_version,
        extra_types=tuple(extra_types),
        extra_params=vocabulary_params if labelled.source == "crm" else None,
    )
    return result, registered
