"""Loading a registered version: the scikit-learn object and its card, read with skops and our trusted types."""

from __future__ import annotations

import io
import json
import zipfile
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

# Where our estimators lived before the library had one folder per stage (leadscore 0.1): a model saved then
# names these modules, and is read as if it named the current ones, so a model store survives the upgrade.
RENAMED_MODULES: dict[str, str] = {
    "leadscore.calibration": "leadscore.model.calibration",
    "leadscore.candidates": "leadscore.model.candidates",
    "leadscore.naive_bayes": "leadscore.model.naive_bayes",
    "leadscore.tabular": "leadscore.model.cleaning",
}


def _current_module_names(node):
    """A skops schema with every ``__module__`` of :data:`RENAMED_MODULES` replaced by the current module."""
    if isinstance(node, dict):
        renamed = {key: _current_module_names(value) for key, value in node.items()}
        module = renamed.get("__module__")
        if isinstance(module, str) and module in RENAMED_MODULES:
            renamed["__module__"] = RENAMED_MODULES[module]
        return renamed
    if isinstance(node, list):
        return [_current_module_names(value) for value in node]
    return node


def read_skops_model(path: str | Path):
    """A skops file read with :data:`SKOPS_TRUSTED_TYPES` only, older module names mapped to the current ones.

    The mapping rewrites the file's schema (in memory), never what is trusted: a type outside the list is
    refused as before.
    """
    import skops.io

    content = Path(path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        schema = json.loads(archive.read("schema.json"))
        current = _current_module_names(schema)
        if current != schema:
            rewritten = io.BytesIO()
            with zipfile.ZipFile(rewritten, "w", compression=zipfile.ZIP_DEFLATED) as out:
                for item in archive.infolist():
                    data = json.dumps(current).encode() if item.filename == "schema.json" else archive.read(item)
                    out.writestr(item, data)
            content = rewritten.getvalue()
    return skops.io.loads(content, trusted=SKOPS_TRUSTED_TYPES)


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
    import yaml

    connect(uri)
    version = resolve_version(alias_or_version, uri)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}"))
    spec = yaml.safe_load((local / "MLmodel").read_text())
    flavor = spec["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "skops":
        raise ValueError(f"version {version} is not saved with skops; refusing to unpickle it")
    model = read_skops_model(local / flavor["pickled_model"])
    card = ModelCard.from_dict((spec.get("metadata") or {}).get(METADATA_KEY, {}), version)
    return model, card
