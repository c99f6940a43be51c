"""A CRM data set as a foreign system would export it: every activity type an opaque code nobody explained.

Real event logs name their activities in their own words (custom activities, workflow steps), which the feature
catalogue does not know. :func:`opaque_event_types` turns a data set (the simulator's, typically) into one: each
event type but the outcomes becomes a code such as ``act_03`` (numbered in order of first appearance), so every
activity is an unknown type and only the generic features describe it. The outcomes (``won``, ``lost``) keep
their names: they are the label, which any import has to map onto the contracts. The optional columns whose
meaning is tied to the known types (``stage``, ``amount``, ``scheduled_for``, ``duration_s``, ``subtype``) are
dropped by default, as in a plain process log (case, activity, time).

Used by ``tests/test_unknown_types.py`` and ``benchmarks/unknown_types.py`` to compare the generic path with the
known-type path on the very same snapshots.
"""

from __future__ import annotations

from leadscore.data.contracts import CLOSING_EVENT_TYPES, CrmData

#: The optional event columns whose meaning comes with a known type.
TYPED_COLUMNS: tuple[str, ...] = ("stage", "amount", "scheduled_for", "duration_s", "subtype")


def opaque_event_types(
    data: CrmData, *, prefix: str = "act_", drop_columns: tuple[str, ...] = TYPED_COLUMNS
) -> tuple[CrmData, dict[str, str]]:
    """The data set with every event type but won/lost renamed to an opaque code, and the renaming used.

    Parameters
    ----------
    data : CrmData
        The data set; its leads, goals and expenses are kept as they are.
    prefix : str
        The codes are ``{prefix}{n:02d}``, numbered by the type's first appearance in time order.
    drop_columns : tuple of str
        Event columns to drop (default: those whose meaning comes with a known type); ``()`` keeps them all.

    Examples
    --------
    >>> from leadscore.simulation.simulator import simulate
    >>> opaque, codes = opaque_event_types(simulate(n_leads=50, months=3, seed=1).data)
    >>> sorted(set(opaque.events["type"]) - set(codes.values()))
    ['lost', 'won']
    >>> "stage" in opaque.events.columns
    False
    """
    events = data.events
    first_seen = events.sort_values("at", kind="stable")["type"].dropna().drop_duplicates()
    activities = [t for t in first_seen if t not in CLOSING_EVENT_TYPES]
    codes = {t: f"{prefix}{i:02d}" for i, t in enumerate(activities)}
    renamed = events.assign(type=events["type"].map(codes).fillna(events["type"]).astype(events["type"].dtype))
    renamed = renamed.drop(columns=[c for c in drop_columns if c in renamed.columns])
    return CrmData(leads=data.leads, events=renamed, goals=data.goals, expenses=data.expenses), codes
