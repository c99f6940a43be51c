"""MLflow: the training run, the registered model ``leadscore``, its aliases and the promotion gate.

Where things go
    Tracking store ``sqlite:///models/mlflow.db`` and artifacts under ``models/artifacts`` by default, ``models/``
    being the project's folder (``LEADSCORE_MODELS_DIR`` moves it). ``MLFLOW_TRACKING_URI`` (or the
    ``tracking_uri`` arguments) points elsewhere; a SQLite store keeps its artifacts beside its database file.
    ``mlflow ui --backend-store-uri sqlite:///models/mlflow.db`` shows everything.

What a run holds
    Parameters (settings, chosen candidate, data description, catalogue version), every candidate's validation
    metrics (``<candidate>.<calibration>.<metric>``) and the chosen one's as plain names, the candidate table
    and calibration table, the plots, the training data's description (``mlflow.data``), and the model itself:
    skops serialisation with the trusted types named explicitly (:data:`SKOPS_TRUSTED_TYPES`), a signature, an
    input example, ``pyfunc_predict_fn="predict_proba"`` and a ``leadscore`` metadata block that the scorer reads.

Aliases
    Every new version gets ``challenger``. It becomes ``champion`` only through :func:`gate`: on the newest
    holdout (the validation period of the run that produced it) its log loss must be no worse than the
    champion's plus :data:`LOG_LOSS_TOLERANCE` and its ROC AUC no lower than the champion's minus
    :data:`AUC_TOLERANCE`. The champion is judged as deployed when it was trained only on data before that
    holdout; otherwise its recipe (the same pipeline and settings, cloned) is refitted on the challenger's
    training part, so neither side has seen the holdout. :func:`promote` and :func:`rollback` are for people;
    the registered model's ``champion_history`` tag remembers the order of champions.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import hash as joblib_hash
from sklearn.base import clone

from leadscore.metrics import calibration_table, evaluate
from leadscore.threads import limited_threads

MODEL_NAME = "leadscore"
EXPERIMENT_NAME = "leadscore"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
METADATA_KEY = "leadscore"
# The gate: log loss may be worse by at most this much (absolute), ROC AUC lower by at most this much.
LOG_LOSS_TOLERANCE = 0.001
AUC_TOLERANCE = 0.005
# Every type in a leadscore model that skops does not trust by itself: our own estimators (kept top-level),
# the tree predictors of gradient boosting, and the check_array partial inside its categorical preprocessor.
SKOPS_TRUSTED_TYPES: list[str] = [
    "leadscore.calibration.TimeCalibratedClassifier",
    "leadscore.candidates.LogOddsBlend",
    "leadscore.naive_bayes.FrequencyNaiveBayes",
    "leadscore.tabular.TableCleaner",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "functools.partial",
    "numpy.dtype",
]
REFERENCE_QUANTILES = 101


# -- where ----------------------------------------------------------------------------------------------------


def models_dir() -> Path:
    """The local model store: ``LEADSCORE_MODELS_DIR``, else the project's ``models/``, else ``./models``."""
    configured = os.environ.get("LEADSCORE_MODELS_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists() and (root / "src" / "leadscore").is_dir():
        return root / "models"
    return Path.cwd() / "models"


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI in force: the argument, else ``MLFLOW_TRACKING_URI``, else the local SQLite store.

    Examples
    --------
    >>> tracking_uri("sqlite:////tmp/x/mlflow.db")
    'sqlite:////tmp/x/mlflow.db'
    """
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{models_dir() / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def connect(uri: str | None = None):
    """Point MLflow at the store, create it and the ``leadscore`` experiment if needed; return a client."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(EXPERIMENT_NAME) is None:
        location = (db.parent / "artifacts").resolve().as_uri() if db is not None else None
        client.create_experiment(EXPERIMENT_NAME, artifact_location=location)
    return client


# -- what the scorer needs to know ----------------------------------------------------------------------------


@dataclass
class ModelCard:
    """What travels with a registered model (in its MLmodel ``metadata``) for scoring and for the gate."""

    source: str  # "crm" or "table"
    kinds: dict[str, str]
    chosen: str
    calibration: str
    cold_start: bool
    horizon_days: float
    time_kind: str
    trained_until: float | None  # last label time (days since epoch) for absolute times, else None
    reference_quantiles: list[float]
    explanation: str
    catalogue_version: str | None = None
    extra_types: list[str] = field(default_factory=list)
    recipe: str = ""
    version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, version: str = "") -> ModelCard:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "version": str(version)})


def recipe_hash(model) -> str:
    """A fingerprint of a model's recipe (estimators and settings, not fitted state)."""
    return joblib_hash(clone(model))


def model_card(result, *, catalogue_version: str | None = None, extra_types=()) -> ModelCard:
    """The card of a training result's final model."""
    from leadscore.explain import explain

    data = result.data
    if result.chosen is not None:
        reference = result.chosen.probabilities
        chosen, calibration = result.chosen.name, result.chosen.calibration
    else:
        reference = result.model.predict_proba(data.X)[:, 1]
        chosen, calibration = "cold_start", "none"
    trained_until = None
    if data.times is not None and data.time_kind in ("cutoff", "column"):
        trained_until = float(data.times.max() + data.horizon)
    sample = data.X.head(1)
    return ModelCard(
        source=data.source,
        kinds=dict(data.kinds),
        chosen=chosen,
        calibration=calibration,
        cold_start=result.cold_start,
        horizon_days=float(data.horizon),
        time_kind=data.time_kind,
        trained_until=trained_until,
        reference_quantiles=[float(q) for q in np.quantile(reference, np.linspace(0, 1, REFERENCE_QUANTILES))],
        explanation=explain(result.model, sample).method,
        catalogue_version=catalogue_version,
        extra_types=list(extra_types),
        recipe=recipe_hash(result.model),
    )


def pip_requirements() -> list[str]:
    """What the logged model needs to be loaded elsewhere, pinned to the versions it was trained with.

    Given explicitly: MLflow would otherwise infer them by loading the model in a subprocess (10 s a run).
    The leadscore package itself is needed too (its estimators are in the model); it is not on PyPI, so it is
    not listed here: install it from this repository.
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")]


# -- logging --------------------------------------------------------------------------------------------------


def _clean_metrics(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _signature_frame(X: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """The first rows with plain dtypes MLflow's schema inference understands (integers as floats)."""
    example = X.head(rows).copy()
    for column in example.columns:
        if not pd.api.types.is_numeric_dtype(example[column]) or pd.api.types.is_bool_dtype(example[column]):
            example[column] = example[column].astype(object).where(example[column].notna(), None)
        elif pd.api.types.is_integer_dtype(example[column]):
            example[column] = example[column].astype("float64")
    return example


def _training_dataset(frame: pd.DataFrame, description: str):
    """The training data's MLflow description, without MLflow walking every value of every text column.

    ``mlflow.data.from_pandas`` infers the schema value by value (11 s on the 60,000-snapshot demo); here the
    digest is a vectorised hash of the whole frame and the schema is inferred from its first 1,000 rows.
    """
    import hashlib

    import mlflow
    from mlflow.models import infer_signature

    digest = hashlib.md5(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:8]
    dataset = mlflow.data.from_pandas(frame, targets="label", name=description[:200], digest=digest)
    dataset.__dict__["schema"] = infer_signature(_signature_frame(frame, 1000)).inputs  # the cached property
    return dataset


@dataclass
class Registered:
    """A logged and registered training result, and what the gate decided."""

    version: str
    run_id: str
    model_uri: str
    promoted: bool
    reason: str
    comparison: dict[str, float] = field(default_factory=dict)


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
    from mlflow.models import infer_signature

    from leadscore.plots import save_plots

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
            "validation": "none (cold start)" if result.split is None else result.split.describe()[:480],
            **(extra_params or {}),
        }
        mlflow.log_params(params)
        if result.chosen is not None:
            mlflow.log_metrics(_clean_metrics(result.chosen.metrics))
            for r in result.results:
                mlflow.log_metrics(_clean_metrics(r.metrics, f"{r.name}.{r.calibration}."))
            table = calibration_table(result.holdout.y, result.chosen.probabilities)
            mlflow.log_dict(table.to_dict(orient="list"), "calibration_table.json")
            mlflow.log_text(result.table().to_csv(index=False), "candidates.csv")
            with tempfile.TemporaryDirectory() as tmp:
                for path in save_plots(result, tmp):
                    mlflow.log_artifact(str(path), "plots")
        mlflow.log_dict(result.metrics(), "training_summary.json")
        mlflow.log_input(_training_dataset(data.X.assign(label=data.y), data.description), context="training")
        mlflow.set_tags({"leadscore.description": data.description, "leadscore.cold_start": str(result.cold_start)})
        example = _signature_frame(data.X)
        signature = infer_signature(example, result.model.predict_proba(data.X.head(5)))
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
    return Registered(version, run.info.run_id, f"models:/{MODEL_NAME}/{version}", False, "not gated yet")


# -- loading --------------------------------------------------------------------------------------------------


def resolve_version(alias_or_version: str, uri: str | None = None) -> str:
    """The version number an alias (``champion``) or a version string (``"3"``) stands for."""
    client = connect(uri)
    if str(alias_or_version).isdigit():
        client.get_model_version(MODEL_NAME, str(alias_or_version))  # raises if it does not exist
        return str(alias_or_version)
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, alias_or_version).version)
    except Exception as err:  # MLflow raises its own RestException / MlflowException
        raise LookupError(f"no version of model {MODEL_NAME!r} has the alias {alias_or_version!r}") from err


def load_version(alias_or_version: str = CHAMPION, uri: str | None = None):
    """Load a registered model (the scikit-learn object) and its :class:`ModelCard`.

    The skops file is read with this code's own :data:`SKOPS_TRUSTED_TYPES`, not with a list read from the
    artifact, so a tampered artifact cannot widen what is trusted (which is why MLflow's own loader asks for
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``; this one does not need it).

    Examples
    --------
    >>> model, card = load_version("champion")  # doctest: +SKIP
    >>> card.chosen  # doctest: +SKIP
    'blend'
    """
    import mlflow
    import skops.io
    import yaml

    connect(uri)
    version = resolve_version(alias_or_version, uri)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}"))
    spec = yaml.safe_load((local / "MLmodel").read_text())
    flavor = spec["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise ValueError(f"version {version} is not saved with skops; refusing to unpickle it")
    model = skops.io.load(local / flavor["pickled_model"], trusted=SKOPS_TRUSTED_TYPES)
    card = ModelCard.from_dict((spec.get("metadata") or {}).get(METADATA_KEY, {}), version)
    return model, card


# -- the gate -------------------------------------------------------------------------------------------------


def _history(client) -> list[str]:
    tags = client.get_registered_model(MODEL_NAME).tags
    return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]


def _set_champion(client, version: str, reason: str) -> None:
    history = _history(client)
    try:
        current = str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except Exception:
        current = None
    if current is not None and (not history or history[-1] != current):
        history.append(current)  # the alias was moved outside leadscore: keep the record straight
    if not history or history[-1] != str(version):
        history.append(str(version))
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion", reason[:4900])


@dataclass
class GateDecision:
    """Whether the challenger beats the champion on the newest holdout, why, and the figures."""

    promote: bool
    reason: str
    comparison: dict[str, float] = field(default_factory=dict)


def compare(result, champion_model, champion_card: ModelCard) -> GateDecision:
    """Judge a training result's chosen model against the champion on the result's holdout (the gate's rule)."""
    if result.cold_start:
        if champion_card.cold_start:
            return GateDecision(True, "both are cold-start models; the newer one (more data) takes over")
        return GateDecision(False, "a cold-start model never replaces a trained champion")
    if champion_card.cold_start:
        return GateDecision(True, "the champion is a provisional cold-start model; a trained model replaces it")
    holdout, train_part = result.holdout, result.train_part
    needed = list(getattr(champion_model, "feature_names_in_", champion_card.kinds))
    absent = [c for c in needed if c not in holdout.X.columns]
    if absent:
        return GateDecision(
            False,
            f"the champion needs column(s) {absent[:8]} that this data set lacks: the two cannot be compared on "
            "the same holdout (promote by hand with `leadscore promote VERSION` if intended)",
        )
    start = result.split.valid_start if result.split.time_ordered else None
    seen = champion_card.trained_until is None or start is None or champion_card.trained_until > start
    if not seen:
        mode = "as deployed (trained before the holdout)"
        champion_p = champion_model.predict_proba(holdout.X[needed])[:, 1]
    elif champion_card.recipe and champion_card.recipe == recipe_hash(result.chosen.model):
        mode = "same recipe as the challenger (identical when refitted on the same data)"
        champion_p = result.chosen.probabilities
    else:
        mode = "its recipe refitted on the challenger's training part (it had seen the holdout)"
        refit = clone(champion_model).fit(train_part.X[needed], train_part.y, times=train_part.times)
        champion_p = refit.predict_proba(holdout.X[needed])[:, 1]
    champ = evaluate(holdout.y, champion_p)
    new = result.chosen.metrics
    comparison = {
        "challenger_log_loss": new["log_loss"],
        "champion_log_loss": champ["log_loss"],
        "challenger_roc_auc": new["roc_auc"],
        "champion_roc_auc": champ["roc_auc"],
    }
    problems = []
    if new["log_loss"] > champ["log_loss"] + LOG_LOSS_TOLERANCE:
        problems.append(
            f"log loss {new['log_loss']:.4f} is worse than the champion's {champ['log_loss']:.4f} by more than "
            f"{LOG_LOSS_TOLERANCE}"
        )
    if new["roc_auc"] < champ["roc_auc"] - AUC_TOLERANCE:
        problems.append(
            f"ROC AUC {new['roc_auc']:.4f} is lower than the champion's {champ['roc_auc']:.4f} by more than "
            f"{AUC_TOLERANCE}"
        )
    judged = f"on the latest {len(holdout)} examples, champion judged {mode}"
    if problems:
        return GateDecision(False, "; ".join(problems) + f" ({judged})", comparison)
    return GateDecision(
        True,
        f"log loss {new['log_loss']:.4f} vs {champ['log_loss']:.4f} (tolerance {LOG_LOSS_TOLERANCE}), ROC AUC "
        f"{new['roc_auc']:.4f} vs {champ['roc_auc']:.4f} (tolerance {AUC_TOLERANCE}) {judged}",
        comparison,
    )


def register(result, *, uri: str | None = None, **log_options) -> Registered:
    """Log and register a training result, then apply the gate: ``champion`` if it passes, else ``challenger``.

    Examples
    --------
    >>> outcome = register(train(data))  # doctest: +SKIP
    >>> outcome.promoted, outcome.reason  # doctest: +SKIP
    (True, 'no champion yet')
    """
    outcome = log_training(result, uri=uri, **log_options)
    client = connect(uri)
    try:
        champion_version = resolve_version(CHAMPION, uri)
    except LookupError:
        champion_version = None
    if champion_version is None:
        provisional = " (cold start: scores are provisional)" if result.cold_start else ""
        decision = GateDecision(True, f"no champion yet{provisional}")
    else:
        champion_model, champion_card = load_version(champion_version, uri)
        with limited_threads():
            decision = compare(result, champion_model, champion_card)
        decision.reason = f"against champion version {champion_version}: {decision.reason}"
    client.set_model_version_tag(MODEL_NAME, outcome.version, "gate", decision.reason[:4900])
    if decision.promote:
        _set_champion(client, outcome.version, decision.reason)
    outcome.promoted, outcome.reason, outcome.comparison = decision.promote, decision.reason, decision.comparison
    return outcome


def promote(version: str, *, uri: str | None = None, reason: str = "promoted by hand") -> str:
    """Make ``version`` the champion (by hand, without the gate); returns the previous champion or ''."""
    client = connect(uri)
    version = resolve_version(str(version), uri)
    try:
        previous = resolve_version(CHAMPION, uri)
    except LookupError:
        previous = ""
    _set_champion(client, version, reason)
    return previous


def rollback(*, uri: str | None = None) -> tuple[str, str]:
    """Give the ``champion`` alias back to the previous champion; returns (demoted, restored) versions.

    Raises
    ------
    LookupError
        When there is no earlier champion to go back to.
    """
    client = connect(uri)
    current = resolve_version(CHAMPION, uri)
    history = _history(client)
    if not history or history[-1] != current:
        history.append(current)
    if len(history) < 2:
        raise LookupError(f"version {current} is the only champion there has been: nothing to roll back to")
    demoted = history.pop()
    restored = history[-1]
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, restored)
    client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(MODEL_NAME, demoted, "rolled_back", f"champion alias returned to version {restored}")
    return demoted, restored
