"""The score keeper: a background thread that keeps the latest score of every open lead in the store current.

The rule. A lead's stored score is recomputed when

- its data changed: an ingestion (the API, ``leadscore db load``) marked it stale in the same transaction;
- the model changed: a new champion marks every row of another version stale (saying which version it is from);
- time moved on: a row whose cutoff is older than ``refresh_s`` (a day by default) is re-scored as of now, so
  days since the last touch, sliding windows and the follow-up flag are never more than that old;
- it failed before and ``retry_s`` has passed (new data retries at once).

The keeper claims up to ``batch_leads`` rows at a time, reads only those leads' rows, scores them as of now with
the model in use (:func:`leadscore.serving.kept.latest_scores`) and writes them in one short transaction, so
readers are never blocked (SQLite in WAL mode, PostgreSQL MVCC) and memory holds one batch. A batch that raises
is scored again lead by lead, so one bad lead cannot hold back the others; the lead that still fails keeps its
last score, ``stale`` with the error as the reason. An ingestion wakes the keeper (:meth:`ScoreKeeper.wake`);
otherwise it looks for work every ``idle_s``, which also catches ingestions by other processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from leadscore.serving.kept import BATCH_LEADS, latest_scores
from leadscore.serving.prioritize import follow_up

log = logging.getLogger("leadscore.keeper")

#: A score moving less than this (in probability), same grade and version, adds no point to the lead's history.
HISTORY_CHANGE = 0.005


def _now() -> datetime:
    return datetime.now(UTC)


class ScoreKeeper:
    """Keeps ``lead_scores`` current with the model that ``scorer`` returns.

    Parameters
    ----------
    repo : leadscore.store.Repository
    scorer : callable
        Returns the :class:`~leadscore.serving.scorer.Scorer` in use now, or None while there is none.
    follow_up_days : float
        As for the prioritised list.
    batch_leads : int
        Leads per batch.
    refresh_s : float
        The oldest a current score may get before it is recomputed as of now.
    retry_s : float
        How long a lead whose re-score failed waits before the next attempt (new data retries at once).
    idle_s : float
        How often to look for work when nothing woke the keeper.
    clock : callable
        The time now (the cutoff of the scores); tests fix it.
    score : callable
        ``score(scorer, leads, events, cutoff, follow_up_days)`` -> the score rows; default
        :func:`~leadscore.serving.kept.latest_scores`.

    Examples
    --------
    >>> keeper = ScoreKeeper(repo, lambda: scorer, follow_up_days=14)  # doctest: +SKIP
    >>> keeper.drain()  # score every stale lead now, in this thread  # doctest: +SKIP
    """

    def __init__(
        self,
        repo,
        scorer: Callable[[], object | None],
        *,
        follow_up_days: float,
        batch_leads: int = BATCH_LEADS,
        refresh_s: float = 86_400.0,
        retry_s: float = 300.0,
        idle_s: float = 0.5,
        clock: Callable[[], datetime] = _now,
        score: Callable[..., pd.DataFrame] = latest_scores,
    ):
        self.repo = repo
        self._scorer = scorer
        self.follow_up_days = follow_up_days
        self.batch_leads = batch_leads
        self.refresh = timedelta(seconds=refresh_s)
        self.retry = timedelta(seconds=retry_s)
        self.idle_s = idle_s
        self._clock = clock
        self._score_rows = score
        self._version: str | None = None
        self._next_sweep: datetime | None = None
        self._reflag_due = True  # the flags are re-derived store-wide once the queue is empty
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The last error of the loop itself (the database unreachable, say); '' when all is well.
        self.problem = ""

    # ---- the thread

    def start(self) -> None:
        """Run :meth:`step` in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="leadscore-score-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def wake(self) -> None:
        """Look for work now (called after an ingestion)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.step()
                self.problem = ""
            except Exception as err:  # noqa: BLE001 - the keeper must outlive a database hiccup; it retries
                self.problem = f"{type(err).__name__}: {err}"
                log.warning("score keeper: %s", self.problem)
                done = 0
            if not done:
                self._wake.wait(self.idle_s)
                self._wake.clear()

    # ---- the work

    def step(self) -> int:
        """Re-score one batch of claimed leads; return how many were claimed (0: nothing to do, or no model)."""
        scorer = self._scorer()
        if scorer is None or scorer.card.source != "crm":
            return 0
        now = pd.Timestamp(self._clock()).tz_convert("UTC").floor("us").to_pydatetime()
        if scorer.model_version != self._version:
            marked = self.repo.mark_other_versions_stale(scorer.model_version)
            log.info("score keeper: model version %s; %d stored scores to redo", scorer.model_version, marked)
            self._version = scorer.model_version
        if self._next_sweep is None or now >= self._next_sweep:
            self.repo.queue_unscored_open_leads(now)
            self._next_sweep = now + self.refresh
        claims = self.repo.claim_scores(self.batch_leads, now=now, due_before=now - self.refresh)
        if claims:
            self._score(scorer, claims, now)
            self._reflag_due = True
        elif self._reflag_due:
            self.reflag()
            self._reflag_due = False
        return len(claims)

    def reflag(self) -> int:
        """Re-derive every kept lead's needs-follow-up flag and gap with the list's rule
        (:func:`leadscore.serving.prioritize.follow_up`) over all kept scores at once: each stage's usual gap and
        the "worth chasing" floor store-wide, as the in-memory list takes them, not per batch of 500. Rows
        re-scored meanwhile are left to the next pass. Returns how many rows changed.

        Runs when the keeper's queue empties after writing scores: it reads one row per open lead (no history).
        """
        facts = self.repo.follow_up_facts()
        if facts.empty:
            return 0
        flag, gap = follow_up(
            probability=facts["probability"].to_numpy(dtype=float),
            days_since_last_touch=facts["days_since_last_touch"].to_numpy(dtype=float),
            has_next_step=facts["has_next_step"].to_numpy(dtype=bool),
            stage=facts["stage"],
            own_cadence=facts["own_cadence_days"].to_numpy(dtype=float),
            follow_up_days=self.follow_up_days,
        )
        differs = (flag != facts["needs_follow_up"].to_numpy()) | (gap != facts["cadence_days"].to_numpy(dtype=float))
        changed = facts.loc[differs, ["lead_id", "computed_at"]].assign(flag=flag[differs], gap=gap[differs])
        return self.repo.write_follow_up(changed.to_dict("records"))

    def drain(self, max_batches: int | None = None) -> int:
        """Run :meth:`step` until there is nothing left to do (or ``max_batches``); return the leads claimed."""
        total, batches = 0, 0
        while max_batches is None or batches < max_batches:
            done = self.step()
            if not done:
                break
            total, batches = total + done, batches + 1
        return total

    def _score(self, scorer, claims, cutoff: datetime) -> None:
        ids = [claim.lead_id for claim in claims]
        try:
            leads = self.repo.load_leads(ids, attributes=scorer.attributes)
            events = self.repo.load_events(ids)
            floor = self.repo.median_kept_probability()
            rows = self._score_rows(scorer, leads, events, cutoff, self.follow_up_days, min_probability=floor)
        except Exception as err:  # noqa: BLE001 - any failure of scoring is reported on the leads it concerns
            if len(claims) > 1:
                for claim in claims:  # find the lead(s) that fail; the others are scored
                    self._score(scorer, [claim], cutoff)
                return
            reason = f"re-score failed: {type(err).__name__}: {err}"[:500]
            log.warning("score keeper: lead %s: %s", ids[0], reason)
            self.repo.fail_scores(claims, reason, retry_at=cutoff + self.retry)
            return
        self.repo.write_scores(rows, claims, computed_at=_now(), history_change=HISTORY_CHANGE)
