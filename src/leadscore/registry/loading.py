"""Loading a registered version: the scikit-learn object and its card, read with skops and our trusted types."""

from __future__ import annotations

from pathlib import Path

from leadscore.registry.card import ModelCard
from leadscore.registry.store import CHAMPION, METADATA_KEY, MODEL_NAME, connect, resolve_version

# Every type in a leadscore model that skops does not trust by itself: our own estimators (kept top-level),
# the tree predictors of gradient boosting, and the check_array partial inside its categorical preprocessor.
SKOPS_TRUSTED_TYPES: list[str] = [
    "leadscore.model.calibration.TimeCalibratedClassifier",
    "leadscore.model.candidates.LogOddsBlend",
    "leadscore.model.naive_bayes.FrequencyNaiveBayes",
    "leadscore.model.cleaning.TableCleaner",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "functools.partial",
    "numpy.dtype",
]


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
