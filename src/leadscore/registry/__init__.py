"""MLflow: the training run, the registered model ``leadscore``, its aliases and the promotion gate.

- :mod:`~leadscore.registry.store`: where the store is, the connection, the model's and aliases' names;
- :mod:`~leadscore.registry.card`: the model card that travels with each version;
- :mod:`~leadscore.registry.signature`: the model's MLflow signature, typed as the readers type the data;
- :mod:`~leadscore.registry.tracking`: a training result logged as a run and registered as ``challenger``;
- :mod:`~leadscore.registry.loading`: a version loaded back with skops and our trusted types;
- :mod:`~leadscore.registry.gate`: the promotion gate, ``promote`` and ``rollback``;
- :mod:`~leadscore.registry.workflow`: training data to registered model in one call each.

The names below are the stage's public interface (``from leadscore import registry; registry.load_version``).
"""

from leadscore.registry.card import REFERENCE_QUANTILES, ModelCard, model_card, recipe_hash
from leadscore.registry.gate import (
    AUC_TOLERANCE,
    LOG_LOSS_TOLERANCE,
    GateDecision,
    compare,
    decisions,
    promote,
    register,
    rollback,
)
from leadscore.registry.loading import SKOPS_TRUSTED_TYPES, load_version
from leadscore.registry.store import (
    CHALLENGER,
    CHAMPION,
    EXPERIMENT_NAME,
    HISTORY_TAG,
    METADATA_KEY,
    MODEL_NAME,
    connect,
    models_dir,
    resolve_version,
    tracking_uri,
)
from leadscore.registry.tracking import Registered, log_training, pip_requirements

__all__ = [
    "AUC_TOLERANCE",
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT_NAME",
    "HISTORY_TAG",
    "LOG_LOSS_TOLERANCE",
    "METADATA_KEY",
    "MODEL_NAME",
    "REFERENCE_QUANTILES",
    "SKOPS_TRUSTED_TYPES",
    "GateDecision",
    "ModelCard",
    "Registered",
    "compare",
    "connect",
    "decisions",
    "load_version",
    "log_training",
    "model_card",
    "models_dir",
    "pip_requirements",
    "promote",
    "recipe_hash",
    "register",
    "resolve_version",
    "rollback",
    "tracking_uri",
]
