"""Logging a training result as an MLflow run and registering its model with the ``challenger`` alias.

A run holds parameters (settings, chosen candidate, data description, catalogue version), every candidate's
validation metrics (``<candidate>.<calibration>.<metric>``) and the chosen one's as plain names, the later
period's calibration pairs (``later_ece`` and ``later_ece_logistic_baseline``, ...), the candidate
table and calibration table, the plots, the training data's description (``mlflow.data``), the training
distribution of every input and of the score (:data:`~leadscore.model.reference.REFERENCE_ARTIFACT`, what drift
is measured against), and the model itself:
skops serialisation with the trusted types named explicitly (:data:`SKOPS_TRUSTED_TYPES`), a signature typed as
the readers type the data (:mod:`~leadscore.registry.signature`), an input example,
``pyfunc_predict_fn="predict_proba"`` and a ``leadscore`` metadata block that the scorer reads.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.model.metrics import calibration_table
from leadscore.model.reference import REFERENCE_ARTIFACT, training_reference
from leadscore.registry.card import model_card
from leadscore.registry.loading import SKOPS_TRUSTED_TYPES
from leadscore.registry.signature import example_frame, model_signature
from leadscore.registry.store import CHALLENGER, EXPERIMENT_NAME, METADATA_KEY, MODEL_NAME, connect


def pip_requirements() -> list[str]:
    """What the logged model needs to be loaded elsewhere, pinned to the versions it was trained with.

    Given explicitly: MLflow would otherwise infer them by loading the model in a subprocess (10 s a run).
    The leadscore package itself is needed too (its estimators are in the model); it is not on PyPI, so it is
    not listed here: install it from this repository.
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")]


def _clean_metrics(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    # Not JSON clean-up (leadscore.data.records): MLflow refuses a metric that is not a finite number, so such
    # metrics are left out of the run rather than written as null.
    return {f"{prefix}{k}": float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _training_dataset(frame: pd.DataFrame, description: str, schema):
    """The training data's MLflow description, without MLflow walking every value of every text column.

    ``mlflow.data.from_pandas`` infers the schema value by value (11 s on the 60,000-snapshot demo); here the
    digest is a vectorised hash of the whole frame and the schema is given (the model's input schema and the
    label).
    """
    import hashlib

    import mlflow

    digest = hashlib.md5(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:8]
    dataset = mlflow.data.from_pandas(frame, targets="label", name=description[:200], digest=digest)
    dataset.__dict__["schema"] = schema  # the cached property
    return dataset


def _attribute_params(selection) -> dict[str, object]:
    """The lead attribute selection's settings and outcome as run parameters (the full account is an artifact)."""
    if not selection:
        return {}
    settings = selection["settings"]
    return {
        "attributes_max": settings["max_attributes"],
        "attributes_min_coverage": settings["min_coverage"],
        "attributes_available": len(selection["attributes"]),
        "attributes_used": len(selection["chosen"]),
    }


@dataclass(kw_only=True)
class Registered:
    """A logged and registered training result, and what the gate decided."""

    version: str
    run_id: str
    model_uri: str
    promoted: bool
    reason: str
    comparison: dict[str, float] = field(default_factory=dict)
    rule: str = ""
    evidence: dict[str, object] = field(default_factory=dict)


def log_training(
    result,
    *,
    uri: str | None = None,
    run_name: str | None = None,
    catalogue_version: str | None = None,
    extra_types=(),
    extra_params: dict | None = None,
) -> Registered:
    """Log a training result as an MLflow run, register its model and give it the ``challenger`` alias.

    The gate is not applied here (see :func:`register`); ``promoted`` is False.
    """
    import mlflow
    from mlflow.types.schema import ColSpec, Schema

    from leadscore.model.plots import save_plots

    client = connect(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    card = model_card(result, catalogue_version=catalogue_version, extra_types=extra_types)
    data = result.data
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=run_name) as run:
        params = {
            **{k: str(v) for k, v in result.settings.items()},
            "chosen": card.chosen,
            "chosen_calibration": card.calibration,
            "cold_start": str(result.cold_start),
            "source": data.source,
            "n_examples": len(data),
            "n_positives": data.positives,
            "n_features": data.X.shape[1],
            "catalogue_version": catalogue_version or "n/a",
            **_attribute_params(data.choices.get("attributes")),
            "validation": "none (cold start)" if result.split is None else result.split.describe()[:480],
            **(extra_params or {}),
        }
        mlflow.log_params(params)
        _log_guard(result.guard)
        if result.chosen is not None:
            mlflow.log_metrics(_clean_metrics(result.chosen.metrics))
            mlflow.log_metrics(_clean_metrics(result.later_period))  # later_<figure>[_logistic_baseline]
            for r in result.results:
                mlflow.log_metrics(_clean_metrics(r.metrics, f"{r.name}.{r.calibration}."))
            table = calibration_table(result.holdout.y, result.chosen.probabilities)
            mlflow.log_dict(table.to_dict(orient="list"), "calibration_table.json")
            mlflow.log_text(result.table().to_csv(index=False), "candidates.csv")
            with tempfile.TemporaryDirectory() as tmp:
                for path in save_plots(result, tmp):
                    mlflow.log_artifact(str(path), "plots")
        mlflow.log_dict(result.metrics(), "training_summary.json")
        for name, choice in data.choices.items():  # what was chosen from the data, e.g. the lead attributes
            mlflow.log_dict(choice, f"choices/{name}.json")
        # The training distribution the drift monitor compares recent weeks with (leadscore.monitoring.drift).
        horizon = data.horizon if data.source == "crm" else None
        reference = training_reference(data.X, data.kinds, result.model.predict_proba(data.X)[:, 1], horizon)
        mlflow.log_dict(reference.to_dict(), REFERENCE_ARTIFACT)
        signature = model_signature(data.X, data.kinds, result.model.predict_proba(data.X.head(5)))
        example = example_frame(data.X[signature.inputs.input_names()], signature.inputs)
        dataset_schema = Schema([*signature.inputs.inputs, ColSpec("long", "label")])
        for name, choice in data.choices.items():  # what was chosen from the data, e.g. the lead attributes
            mlflow.log_dict(choice, f"choices/{name}.json")
        mlflow.log_input(
            _training_dataset(data.X.assign(label=data.y), data.description, dataset_schema), context="training"
        )
        mlflow.set_tags({"leadscore.description": data.description, "leadscore.cold_start": str(result.cold_start)})
        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            signature=signature,
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=MODEL_NAME,
            metadata={METADATA_KEY: card.to_dict()},
            pip_requirements=pip_requirements(),
        )
    version = str(info.registered_model_version)
    tags = {
        "cold_start": str(result.cold_start).lower(),
        "source": data.source,
        "chosen": card.chosen,
        "catalogue_version": catalogue_version or "n/a",
    }
    if result.chosen is not None:
        tags |= {f"holdout_{k}": f"{result.chosen.metrics[k]:.6f}" for k in ("log_loss", "roc_auc", "ece")}
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    return Registered(
        version=version,
        run_id=run.info.run_id,
        model_uri=f"models:/{MODEL_NAME}/{version}",
        promoted=False,
        reason="not gated yet",
    )


def _log_guard(guard) -> None:
    """The leakage guard's decision and evidence in the run: ``leakage_guard.decision`` and ``.flagged``
    parameters, a few ``leakage_guard.*`` metrics, and every column's figures in ``leakage_guard.json``."""
    import mlflow

    if guard is None:
        mlflow.log_param("leakage_guard.decision", "not run")
        return
    mlflow.log_params(guard.params())
    mlflow.log_metrics(guard.metrics())
    mlflow.log_dict(guard.to_dict(), "leakage_guard.json")
