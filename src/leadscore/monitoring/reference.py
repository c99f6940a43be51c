"""A model version's training reference, read back from its MLflow run (written there at training time by
:mod:`leadscore.registry.tracking`, made by :mod:`leadscore.model.reference`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from leadscore.model.reference import REFERENCE_ARTIFACT, TrainingReference
from leadscore.registry.store import MODEL_NAME, connect, resolve_version


def version_run_id(version: str, uri: str | None = None) -> str:
    """The MLflow run that logged a model version (a number or an alias)."""
    client = connect(uri)
    return client.get_model_version(MODEL_NAME, resolve_version(str(version), uri)).run_id


def load_reference(version: str, uri: str | None = None) -> TrainingReference | None:
    """The training reference of a model version (a number or an alias); None for a version logged before
    references were kept (it has no :data:`REFERENCE_ARTIFACT`).

    Examples
    --------
    >>> ref = load_reference("champion")  # doctest: +SKIP
    >>> sorted(ref.features)[:2]  # doctest: +SKIP
    ['attr_company_size', 'attr_country']
    """
    client = connect(uri)
    run_id = version_run_id(version, uri)
    folder, name = REFERENCE_ARTIFACT.rsplit("/", 1)
    if name not in {Path(f.path).name for f in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, REFERENCE_ARTIFACT, tmp)
        return TrainingReference.from_dict(json.loads(Path(path).read_text()))
