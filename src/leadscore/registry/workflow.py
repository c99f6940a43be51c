"""The model's end-to-end steps, one call each, for the CLI, the demo and notebooks.

:func:`crm_training_data` turns a CRM data set into labelled snapshots with the same vocabulary of extra event
types that scoring will use; :func:`train_and_register` trains, logs to MLflow, registers and applies the
promotion gate.
"""

from __future__ import annotations

from collections.abc import Callable

from leadscore.data.contracts import CrmData
from leadscore.model.splits import LabelledData
from leadscore.model.training import DEFAULT_HORIZON_DAYS, TrainingResult, train, training_data_from_crm
from leadscore.registry import Registered, register


def crm_training_data(
    data: CrmData, *, horizon_days: int = DEFAULT_HORIZON_DAYS, drop=(), attributes=None
) -> tuple[LabelledData, tuple[str, ...]]:
    """Labelled snapshots of ``data`` and the extra event types they (and scoring) use.

    ``attributes`` (an :class:`~leadscore.model.attribute_selection.AttributeSelection`) bounds the lead
    attributes the model uses; ``drop`` names features to leave out (an attribute as ``attr_{name}``).

    Examples
    --------
    >>> labelled, extra_types = crm_training_data(load_dataset("data/demo"))  # doctest: +SKIP
    """
    from leadscore.features.builder import top_unknown_types

    extra_types = tuple(top_unknown_types(data.events))
    labelled = training_data_from_crm(data, horizon_days=horizon_days, extra_types=extra_types, attributes=attributes)
    # A lead attribute may be named as the CRM calls it (``--drop crm_ref``) when no feature has that name.
    columns = set(labelled.X.columns)
    drop = [f"attr_{d}" if d not in columns and f"attr_{d}" in columns else d for d in drop]
    return labelled.without_features(drop), extra_types


def train_and_register(
    labelled: LabelledData,
    *,
    extra_types=(),
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
    **train_options,
) -> tuple[TrainingResult, Registered]:
    """Train on labelled data, log and register the model, and let the gate decide on ``champion``.

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
    registered = register(result, uri=tracking_uri, catalogue_version=catalogue_version, extra_types=extra_types)
    return result, registered
