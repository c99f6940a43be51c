"""The `leadscore` command. Each area's commands live in a module of their own beside this one.

The app is made in :mod:`leadscore.cli.app`; importing the areas here adds their commands to it, so the imports
run one way (this package -> an area -> the app) and ``leadscore.cli:app`` is the whole command.
"""

from __future__ import annotations

from leadscore.cli import data, demo, model, monitor, report, retrain, service, simulate, webhooks  # noqa: F401 - each adds its commands
from leadscore.cli.app import app

__all__ = ["app"]
