"""The service's retraining schedule: an APScheduler 3 ``BackgroundScheduler`` started in the app's lifespan.

Every ``check_hours`` the scheduler's one job asks :func:`leadscore.retraining.job.run_due` whether a retraining
is due (the ``every_days`` slot not done yet by any service on the store, or a drift alert past its cool-down) and
runs it under the store's lease. So the schedule itself lives in the store, not in the scheduler: a restart, a
second worker or a second service on the same store never retrains a slot twice, and the first tick comes soon
after start-up (``first_delay_s``) so a service that was down when a slot began catches up.

The job runs one at a time (``max_instances=1``), missed ticks are merged into one (``coalesce``), and a failed
retraining is logged and left for the next tick (the slot stays open).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from leadscore.retraining.job import RetrainOutcome, run_due

log = logging.getLogger("leadscore.retraining")

JOB_ID = "leadscore-retrain"


class RetrainSchedule:
    """Runs :func:`~leadscore.retraining.job.run_due` on a background scheduler.

    Parameters
    ----------
    tick
        What one tick does: a call of ``run_due`` with the service's store, data and options bound.
    check_hours
        How often to ask whether a retraining is due.
    first_delay_s
        Seconds after :meth:`start` of the first tick.
    """

    def __init__(self, tick: Callable[[], RetrainOutcome], *, check_hours: float, first_delay_s: float = 60.0):
        from apscheduler.schedulers.background import BackgroundScheduler

        self.tick = tick
        self.check_hours = check_hours
        self.first_delay_s = first_delay_s
        self.last: RetrainOutcome | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def _run(self) -> None:
        try:
            self.last = self.tick()
        except Exception:  # noqa: BLE001 - logged; the slot stays open and the next tick tries again
            log.exception("scheduled retraining failed")
            return
        if self.last.ran:
            log.info("scheduled retraining: version %s, %s: %s", self.last.version, self.last.rule, self.last.reason)
        else:
            log.info("no retraining: %s", self.last.skipped)

    def start(self) -> None:
        """Start the scheduler thread; the first tick runs ``first_delay_s`` from now."""
        self.scheduler.add_job(
            self._run,
            "interval",
            hours=self.check_hours,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=self.first_delay_s),
        )
        self.scheduler.start()
        log.info("retraining schedule: checking every %g h", self.check_hours)

    def next_run(self) -> datetime | None:
        """When the next tick is due (None when stopped)."""
        job = self.scheduler.get_job(JOB_ID)
        return None if job is None else job.next_run_time

    def stop(self, wait: bool = True) -> None:
        """Stop the scheduler; ``wait`` lets a running retraining finish (its lease is released either way)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)


def store_tick(settings) -> Callable[[], RetrainOutcome]:
    """The tick for a service: the store named by ``settings`` is both the data and the lease's home; drift is
    the monitor's report on the champion (``LEADSCORE_RETRAIN_ON_DRIFT``).

    The engine is made per tick and disposed after, so an idle schedule holds no connection.
    """
    from leadscore.retraining.drift_trigger import champion_drift
    from leadscore.retraining.job import DEFAULT_CANDIDATES
    from leadscore.retraining.rules import RetrainPolicy
    from leadscore.store import Repository, create_engine

    policy = RetrainPolicy(
        max_champion_age_days=settings.retrain_max_champion_age_days or None,
        min_auc_ratio=settings.retrain_min_auc_ratio,
        promote_on_drift=settings.retrain_promote_on_drift,
    )

    def tick() -> RetrainOutcome:
        engine = create_engine(settings.resolved_database_url())
        try:
            repo = Repository(engine)
            drift = champion_drift(settings.mlflow_tracking_uri, engine=engine) if settings.retrain_on_drift else None
            return run_due(
                engine,
                repo.load_crm,
                every_days=settings.retrain_every_days,
                drift_check=drift,
                drift_cooldown_days=settings.retrain_drift_cooldown_days,
                policy=policy,
                tracking_uri=settings.mlflow_tracking_uri,
                horizon_days=settings.horizon_days,
                candidates=DEFAULT_CANDIDATES,
            )
        finally:
            engine.dispose()

    return tick
