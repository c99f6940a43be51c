"""The delivery worker as the service and ``leadscore webhooks deliver`` run it, configured by the settings.

Its periodic jobs: the goal check (``goal.behind``, every ``LEADSCORE_WEBHOOKS_GOAL_CHECK_SECONDS``) and pruning
the delivery log (finished deliveries older than ``LEADSCORE_WEBHOOKS_RETENTION_DAYS``, checked hourly).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from leadscore.store import outbox
from leadscore.store.engine import run_in_write_transaction
from leadscore.webhooks.delivery import DeliveryPolicy, DeliveryWorker, PeriodicJob
from leadscore.webhooks.producers import check_goals
from leadscore.webhooks.targets import TargetPolicy

PRUNE_EVERY_S = 3600.0


def target_policy(settings) -> TargetPolicy:
    """The SSRF guard's policy from the settings."""
    return TargetPolicy.from_settings(settings.webhooks_allow_private, settings.webhooks_allowed_networks)


def worker_from_settings(repo, settings, **options) -> DeliveryWorker:
    """A :class:`DeliveryWorker` on ``repo``'s store, as the settings say (``options`` override its arguments).

    Examples
    --------
    >>> import tempfile
    >>> from leadscore.settings import Settings
    >>> from leadscore.store import Repository, upgrade_database
    >>> settings = Settings(data_dir=tempfile.mkdtemp())
    >>> _ = upgrade_database(settings.resolved_database_url())
    >>> worker = worker_from_settings(Repository.from_url(settings.resolved_database_url()), settings)
    >>> worker.drain()
    0
    """
    retention = timedelta(days=settings.webhooks_retention_days)

    def prune(now: datetime) -> int:
        return run_in_write_transaction(repo.engine, lambda conn: outbox.prune(conn, now - retention))

    jobs = [
        PeriodicJob("goal check", settings.webhooks_goal_check_seconds, lambda now: check_goals(repo, now)),
        PeriodicJob("prune", PRUNE_EVERY_S, prune, first_after_s=PRUNE_EVERY_S),  # a start takes no write lock
    ]
    values = {"policy": DeliveryPolicy.from_settings(settings), "targets": target_policy(settings), "jobs": jobs}
    values.update(options)
    return DeliveryWorker(repo.engine, **values)
