"""Errors the store raises for bad input (as opposed to a broken database)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventConflict:
    """An event id already stored with other content: which fields differ."""

    event_id: str
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.event_id!r} (differs in {', '.join(self.fields)})"


class EventConflictError(ValueError):
    """Events whose ``event_id`` is already stored with different content; nothing of the request was stored.

    ``conflicts`` names every such event and the fields that differ.
    """

    def __init__(self, conflicts: list[EventConflict]):
        self.conflicts = conflicts
        shown = ", ".join(str(c) for c in conflicts[:10])
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        super().__init__(
            f"{len(conflicts)} event id(s) already stored with different content: {shown}{more}. "
            "An event id is the idempotency key: resend the same content, or use a new id."
        )

    @property
    def event_ids(self) -> list[str]:
        return [c.event_id for c in self.conflicts]


class UnknownLeadError(ValueError):
    """Something refers to a lead the store does not have."""

    def __init__(self, lead_ids: list[str], what: str = "scores"):
        self.lead_ids = lead_ids
        shown = ", ".join(repr(i) for i in lead_ids[:10])
        more = f" and {len(lead_ids) - 10} more" if len(lead_ids) > 10 else ""
        super().__init__(f"{what} for {len(lead_ids)} unknown lead(s): {shown}{more}")
