"""Events that are not a lead's: a goal falling behind, a model promoted, drift over its threshold.

(A lead's events, a grade crossed and follow-up needed, are enqueued by the score keeper's own write
transaction: :mod:`leadscore.store.lead_events`.) Each producer enqueues with
:func:`leadscore.store.outbox.enqueue`, which any other part of leadscore can call in its own transaction.

- ``goal.behind`` (:func:`check_goals`): every ``LEADSCORE_WEBHOOKS_GOAL_CHECK_SECONDS`` (an hour by default) the
  delivery worker computes goal progress as of now (:func:`leadscore.store_analytics.goal_progress`). A goal is
  behind when its status is ``behind`` (to date below target × the elapsed share of the period) or, for a
  budget, ``over pace`` / ``over budget``, once at least :data:`MIN_ELAPSED` of its period has passed (a day
  goal checked at 00:05 is not behind yet). One event per goal, period and status: the deduplication key
  ``goal.behind:<metric>:<period>:<scope>:<period start>:<status>`` keeps several workers, and later checks in
  the same period, from repeating it;
- ``model.promoted`` (:func:`model_promoted`): called when the champion alias moves, by ``leadscore train`` and
  ``leadscore promote`` (the gate or a person), by the service when it loads a new champion, and by scheduled
  retraining. Several of them notice the same move, so an event is stored only if the last announced champion is
  another version, with a deduplication key built from that last announcement (two services racing store one);
- ``drift.detected`` (:func:`drift_detected`): for the monitor, when a model input or the score distribution
  drifts over its threshold; one event per model version, feature and window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from leadscore.store import outbox
from leadscore.store.engine import run_in_write_transaction

GOAL_BEHIND = "goal.behind"
MODEL_PROMOTED = "model.promoted"
DRIFT_DETECTED = "drift.detected"

#: A goal is judged once this share of its period has passed.
MIN_ELAPSED = 0.25
#: The statuses of goal progress that count as falling behind (a budget's: spending too fast).
BEHIND_STATUSES = ("behind", "over pace", "over budget")


def check_goals(repo, now: datetime, *, min_elapsed: float = MIN_ELAPSED) -> int:
    """Enqueue ``goal.behind`` for every goal in force that is behind at ``now``; returns how many are new.

    ``repo`` is a :class:`leadscore.store.Repository`. Payload: ``metric``, ``period``, ``scope``, ``status``,
    ``target``, ``actual``, ``expected_to_date``, ``pct_of_target``, ``needed_daily_rate``, ``days_left``,
    ``period_start``, ``period_end``, ``checked_at``.
    """
    from leadscore import store_analytics

    with repo.engine.connect() as conn:
        if not outbox.subscribers(conn, [GOAL_BEHIND]):
            return 0
    progress = store_analytics.goal_progress(repo, as_of=pd.Timestamp(now))
    if progress.empty:
        return 0
    start = progress["period_start"]
    elapsed = (pd.Timestamp(now) - start) / (progress["period_end"] - start)
    behind = progress[progress["status"].isin(BEHIND_STATUSES) & (elapsed >= min_elapsed)]
    events = [
        outbox.NewEvent(
            GOAL_BEHIND,
            _goal_payload(row, now),
            ordering_key=f"goal:{row['metric']}:{row['period']}:{row['scope']}",
            dedupe_key=f"goal.behind:{row['metric']}:{row['period']}:{row['scope']}:"
            f"{row['period_start'].isoformat()}:{row['status']}",
        )
        for row in behind.to_dict("records")
    ]
    if not events:
        return 0
    return run_in_write_transaction(repo.engine, lambda conn: outbox.enqueue_many(conn, events, now=now).events)


def model_promoted(
    engine: Engine,
    version: str,
    *,
    previous_version: str | None,
    source: str,
    reason: str | None = None,
    alias: str = "champion",
) -> str | None:
    """Announce that ``version`` became the champion (unless that is already the last announcement).

    ``source`` says who noticed: ``"gate"`` (training or retraining), ``"cli"`` (``leadscore promote``),
    ``"service"`` (a service loaded a new champion). Returns the event id, or None when nothing was stored
    (already announced, or nobody subscribed).
    """

    def work(conn: Connection) -> str | None:
        last = outbox.last_event(conn, MODEL_PROMOTED)
        if last is not None and str(last[1].get("version")) == str(version):
            return None
        payload = {
            "version": str(version),
            "previous_version": None if previous_version in (None, "") else str(previous_version),
            "alias": alias,
            "source": source,
            "reason": reason,
        }
        after = last[0] if last is not None else 0
        return outbox.enqueue(
            conn, MODEL_PROMOTED, payload, ordering_key="model", dedupe_key=f"model.promoted:{version}:after:{after}"
        )

    return run_in_write_transaction(engine, work)


def drift_detected(conn: Connection, report: Mapping[str, Any]) -> str | None:
    """Enqueue ``drift.detected`` in the caller's transaction; returns the event id (None: nobody subscribed or
    already announced).

    ``report`` holds ``model_version``, ``feature`` (a model input, or ``"score"`` for the score distribution),
    ``psi``, ``threshold``, ``window_start``, ``window_end`` (ISO 8601) and optionally ``reference`` (what the
    window was compared with) and ``details``. One event per model version, feature and window.
    """
    required = ("model_version", "feature", "psi", "threshold", "window_start", "window_end")
    missing = [k for k in required if k not in report]
    if missing:
        raise ValueError(f"drift report lacks {missing}")
    key = ":".join(
        ["drift.detected", *(str(report[k]) for k in ("model_version", "feature", "window_start", "window_end"))]
    )
    return outbox.enqueue(conn, DRIFT_DETECTED, dict(report), ordering_key="drift", dedupe_key=key)


def _goal_payload(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    def number(value: Any) -> float | None:
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value

    return {
        "metric": row["metric"],
        "period": row["period"],
        "scope": row["scope"],
        "status": row["status"],
        "target": number(row["target"]),
        "actual": number(row["actual"]),
        "expected_to_date": number(row["expected_to_date"]),
        "pct_of_target": number(row["pct_of_target"]),
        "needed_daily_rate": number(row["needed_daily_rate"]),
        "days_left": number(row["days_left"]),
        "period_start": row["period_start"].isoformat(),
        "period_end": row["period_end"].isoformat(),
        "checked_at": now.isoformat(),
    }
