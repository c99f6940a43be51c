# Over 400 lines because it is a table: one entry per feature, read top to bottom (the phrasing is in phrases.py).
"""The feature catalogue: every feature's name, meaning, unit and how to say its value to a salesperson.

This module is the one place where a feature is named and described. The feature builder
(:mod:`leadscore.features.builder`) takes its column names from here, the model's explanations phrase their reasons with
:func:`describe`, and the docs list :func:`catalogue_frame`.

Three families of names exist:

- fixed features, listed in :data:`FEATURES` (``days_since_last_interaction``, ``email_reply_rate``, ``stage``);
- activity counts by event type and window, generated from templates: ``{type}_{window}`` for the known event
  types (``email_replied_30d``), ``other_events_{window}`` for the unknown types outside the vocabulary, and
  for each unknown type chosen as a fixed vocabulary (``extra_types``, see :mod:`leadscore.features.vocabulary`)
  what a known type gets and more: ``event_{slug}_{window}``, ``event_{slug}_days_since_last`` and
  ``event_{slug}_momentum`` (:func:`extra_type_columns`); the known ones are in :data:`FEATURES` too, with the
  sequence features ``last_event_type`` / ``previous_event_type``, whose categories are the counted known types,
  the vocabulary and :data:`OTHER_TYPE`;
- static lead attributes: ``source``, and every other column of the leads table (a CRM's custom field) in its own
  namespace, ``attr_{name}`` (``attr_segment``), so that no attribute name a CRM sends (``stage``, ``label``,
  ``cutoff``, ``email_sent_7d``, ...) can collide with a feature, a key column or the label.

:func:`feature_spec` resolves any of them. Bump :data:`CATALOGUE_VERSION` whenever a definition changes, so
that a model trained on the old definitions is not fed the new ones unknowingly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from leadscore.features.phrases import ago, category, count, days, flag, momentum, quantity, rate, stage_rank

CATALOGUE_VERSION = "1.1"  # 1.1: lead attributes in their own namespace, attr_{name}; per-type momentum of the
# extra types; last and previous event type

# What a feature holds, its unit and its family: closed sets, checked by type checkers.
FeatureKind = Literal["numeric", "categorical"]
Unit = Literal["days", "count", "ratio", "hours", "minutes", "rank", "flag", "amount", ""]
Group = Literal["relationship", "activity", "engagement", "calls", "meetings", "stage", "deal", "static", "context"]
NUMERIC: FeatureKind = "numeric"
CATEGORICAL: FeatureKind = "categorical"

# Known event types that get their own counts, with the noun a salesperson would use (singular, plural).
# `won` and `lost` are absent on purpose: an open lead has none.
COUNTED_TYPES: dict[str, tuple[str, str]] = {
    "email_sent": ("email sent", "emails sent"),
    "email_opened": ("email opened", "emails opened"),
    "email_replied": ("email replied", "emails replied"),
    "call": ("call", "calls"),
    "meeting_scheduled": ("meeting scheduled", "meetings scheduled"),
    "meeting_held": ("meeting held", "meetings held"),
    "meeting_cancelled": ("meeting cancelled", "meetings cancelled"),
    "meeting_rejected": ("meeting rejected", "meetings rejected"),
    "web_visit": ("web visit", "web visits"),
    "form_submitted": ("form submitted", "forms submitted"),
    "stage_changed": ("stage change", "stage changes"),
}

# Count windows: suffix -> (days, or None for all history; how to say it).
WINDOWS: dict[str, tuple[int | None, str]] = {
    "7d": (7, "in the last 7 days"),
    "30d": (30, "in the last 30 days"),
    "90d": (90, "in the last 90 days"),
    "total": (None, "so far"),
}

# What each extra type gets beside its counts per window.
EXTRA_TYPE_MEASURES: tuple[str, ...] = ("days_since_last", "momentum")
# The category of the sequence features for an event of a type outside the counted known types and the vocabulary.
OTHER_TYPE = "(other)"
# The sequence features: the type of the lead's last known event, and of the one before it.
SEQUENCE_FEATURES: tuple[str, str] = ("last_event_type", "previous_event_type")

# Lead columns that are not attributes (identity, time, ownership): never passed through as features.
NON_ATTRIBUTE_LEAD_COLUMNS: tuple[str, ...] = ("lead_id", "created_at", "owner_id")
#: The namespace of lead attributes in the feature frame: attribute ``stage`` is feature ``attr_stage``. No fixed,
#: generated or context feature starts with it (checked at import), so the mapping never collides.
ATTRIBUTE_PREFIX = "attr_"
# Columns of every feature frame that are not features.
KEY_COLUMNS: tuple[str, ...] = ("lead_id", "cutoff")


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One feature: what it means, its kind and unit, and how to say a value of it in words.

    Attributes
    ----------
    name : str
        The column name in the feature frame.
    description : str
        What the feature measures, for the docs.
    kind : {"numeric", "categorical"}
        Numeric features are floats or integers; categorical ones are strings.
    unit : str
        "days", "count", "ratio", "hours", "minutes", "rank", "flag", "amount" or "" (categories).
    group : str
        The family it belongs to: relationship, activity, engagement, calls, meetings, stage, deal, static, context.
    say : callable
        ``say(value) -> str``: the value in a salesperson's words; missing values are handled by ``say`` too.
    missing : str
        What a missing value means ("" when the feature is never missing).
    """

    name: str
    description: str
    kind: FeatureKind
    unit: Unit
    group: Group
    say: Callable[[object], str]
    missing: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Templates for generated names.


def count_name(event_type: str, window: str) -> str:
    """The name of the count of a known event type over a window, e.g. ``email_replied_30d``."""
    if event_type not in COUNTED_TYPES:
        raise ValueError(f"event type {event_type!r} has no count feature; known: {list(COUNTED_TYPES)}")
    if window not in WINDOWS:
        raise ValueError(f"window {window!r} is not one of {list(WINDOWS)}")
    return f"{event_type}_{window}"


def slug(event_type: str) -> str:
    """A column-safe name for an event type: lower case, runs of other characters turned into ``_``.

    Examples
    --------
    >>> slug("Webinar Attended!")
    'webinar_attended'
    """
    text = re.sub(r"[^0-9a-z]+", "_", str(event_type).strip().lower()).strip("_")
    if not text:
        raise ValueError(f"event type {event_type!r} gives an empty column name")
    return text


def extra_type_columns(event_type: str) -> dict[str, str]:
    """The columns generated for one unknown event type of the ``extra_types`` vocabulary, by what they hold.

    The keys are the count windows (:data:`WINDOWS`), ``days_since_last`` and ``momentum``.

    Examples
    --------
    >>> extra_type_columns("Webinar")["momentum"]
    'event_webinar_momentum'
    """
    s = slug(event_type)
    return {**{w: f"event_{s}_{w}" for w in WINDOWS}, **{k: f"event_{s}_{k}" for k in EXTRA_TYPE_MEASURES}}


def extra_type_names(event_type: str) -> list[str]:
    """The columns generated for one unknown event type of the ``extra_types`` vocabulary, in frame order."""
    return list(extra_type_columns(event_type).values())


def _interaction_counts() -> list[Feature]:
    out = []
    for w, (_, when) in WINDOWS.items():
        out.append(
            Feature(
                name=f"interactions_{w}",
                description=f"Events of any type other than a stage change, {when}.",
                kind=NUMERIC,
                unit="count",
                group="activity",
                say=count("interaction", "interactions", when),
            )
        )
    return out


def _type_counts() -> list[Feature]:
    out = []
    for event_type, (singular, plural) in COUNTED_TYPES.items():
        for w, (_, when) in WINDOWS.items():
            out.append(
                Feature(
                    name=count_name(event_type, w),
                    description=f"Number of {event_type!r} events {when} (up to the cutoff).",
                    kind=NUMERIC,
                    unit="count",
                    group="activity",
                    say=count(singular, plural, when),
                )
            )
    return out


def _other_counts() -> list[Feature]:
    out = [
        Feature(
            name=f"other_events_{w}",
            description=f"Events of unknown types outside the extra_types vocabulary, {when}.",
            kind=NUMERIC,
            unit="count",
            group="activity",
            say=count("other event", "other events", when),
        )
        for w, (_, when) in WINDOWS.items()
    ]
    out.append(
        Feature(
            name="days_since_last_other_event",
            description="Days from the last event of an unknown type outside the vocabulary to the cutoff.",
            kind=NUMERIC,
            unit="days",
            group="activity",
            say=ago("last other event", "no other events"),
            missing="no event of an unknown type yet",
        )
    )
    return out


def _type_momentum(words: str) -> Callable[[object], str]:
    """:func:`momentum` said of one event type ("webinar events up 2.0x ...") rather than of all activity."""

    def say(value: object) -> str:
        return momentum(value).replace("activity", f"{words} events", 1)

    return say


def _extra_type_features(event_type: str) -> list[Feature]:
    s = slug(event_type)
    words = s.replace("_", " ")
    names = extra_type_columns(event_type)
    out = [
        Feature(
            name=names[w],
            description=f"Number of {event_type!r} events {when} (an unknown type in the extra_types vocabulary).",
            kind=NUMERIC,
            unit="count",
            group="activity",
            say=count(f"{words} event", f"{words} events", when),
        )
        for w, (_, when) in WINDOWS.items()
    ]
    out.append(
        Feature(
            name=names["days_since_last"],
            description=f"Days from the last {event_type!r} event to the cutoff.",
            kind=NUMERIC,
            unit="days",
            group="activity",
            say=ago(f"last {words} event", f"no {words} events"),
            missing=f"no {event_type!r} event yet",
        )
    )
    out.append(
        Feature(
            name=names["momentum"],
            description=f"{event_type!r} events in the last 30 days against the 30 days before: "
            "(n_0_30 + 1) / (n_30_60 + 1).",
            kind=NUMERIC,
            unit="ratio",
            group="activity",
            say=_type_momentum(words),
        )
    )
    return out


def _sequence_features() -> list[Feature]:
    categories = f"a counted known type, a type of the extra_types vocabulary or {OTHER_TYPE!r}"
    last, previous = SEQUENCE_FEATURES
    return [
        Feature(
            name=last,
            description=f"The type of the lead's last event up to the cutoff: {categories}.",
            kind=CATEGORICAL,
            unit="",
            group="activity",
            say=category("last event: {v}", "no event yet"),
            missing="no event yet",
        ),
        Feature(
            name=previous,
            description=f"The type of the event before the lead's last one: {categories}.",
            kind=CATEGORICAL,
            unit="",
            group="activity",
            say=category("event before the last: {v}", "fewer than two events yet"),
            missing="fewer than two events yet",
        ),
    ]


_FIXED: list[Feature] = [
    # relationship
    Feature(
        name="days_since_created",
        description="Days from the lead's creation (the start of the relationship) to the cutoff.",
        kind=NUMERIC,
        unit="days",
        group="relationship",
        say=days("relationship started {n} day{s} ago", "start of the relationship unknown"),
    ),
    Feature(
        name="days_since_first_interaction",
        description="Days from the first interaction (any event but a stage change) to the cutoff.",
        kind=NUMERIC,
        unit="days",
        group="relationship",
        say=ago("first interaction", "no interaction yet"),
        missing="no interaction yet",
    ),
    Feature(
        name="days_since_last_interaction",
        description="Days from the last interaction (any event but a stage change) to the cutoff.",
        kind=NUMERIC,
        unit="days",
        group="relationship",
        say=ago("last interaction", "no interaction yet"),
        missing="no interaction yet",
    ),
    Feature(
        name="days_until_next_step",
        description="Days from the cutoff to the earliest future scheduled_for among the scheduling events known at "
        "the cutoff, ignoring those cancelled or rejected by then.",
        kind=NUMERIC,
        unit="days",
        group="relationship",
        say=days("next step in {n} day{s}", "no next step scheduled"),
        missing="no next step scheduled",
    ),
    Feature(
        name="has_next_step",
        description="1 if a next step (a meeting or call) is scheduled after the cutoff and not cancelled, else 0.",
        kind=NUMERIC,
        unit="flag",
        group="relationship",
        say=flag("a next step is scheduled", "no next step scheduled"),
    ),
    # activity
    *_interaction_counts(),
    Feature(
        name="activity_momentum",
        description="Interactions in the last 30 days against the 30 days before: (n_0_30 + 1) / (n_30_60 + 1).",
        kind=NUMERIC,
        unit="ratio",
        group="activity",
        say=momentum,
    ),
    *_type_counts(),
    *_other_counts(),
    *_sequence_features(),
    # engagement
    Feature(
        name="email_open_rate",
        description="Emails opened per email sent, all history up to the cutoff.",
        kind=NUMERIC,
        unit="ratio",
        group="engagement",
        say=rate("{pct} of emails opened", "no emails sent yet"),
        missing="no email sent yet",
    ),
    Feature(
        name="email_reply_rate",
        description="Emails replied per email sent, all history up to the cutoff.",
        kind=NUMERIC,
        unit="ratio",
        group="engagement",
        say=rate("{pct} of emails replied", "no emails sent yet"),
        missing="no email sent yet",
    ),
    Feature(
        name="email_reply_hours_mean",
        description="Mean hours from the latest email sent before each reply to the reply.",
        kind=NUMERIC,
        unit="hours",
        group="engagement",
        say=quantity("replies after {v} hours on average", "no replies to a sent email yet"),
        missing="no reply that follows a sent email yet",
    ),
    Feature(
        name="days_since_last_reply",
        description="Days from the last email reply to the cutoff.",
        kind=NUMERIC,
        unit="days",
        group="engagement",
        say=ago("last reply", "no replies yet"),
        missing="no reply yet",
    ),
    # calls
    Feature(
        name="cold_calls_total",
        description="Calls with subtype 'cold' up to the cutoff.",
        kind=NUMERIC,
        unit="count",
        group="calls",
        say=count("cold call", "cold calls", "so far"),
    ),
    Feature(
        name="call_minutes_mean",
        description="Mean call duration in minutes (calls with a known duration).",
        kind=NUMERIC,
        unit="minutes",
        group="calls",
        say=quantity("calls last {v} minutes on average", "no call durations yet"),
        missing="no call with a duration yet",
    ),
    Feature(
        name="call_minutes_total",
        description="Total call duration in minutes.",
        kind=NUMERIC,
        unit="minutes",
        group="calls",
        say=quantity("{v} minutes on the phone so far", "no call time yet", digits=0),
    ),
    # meetings
    Feature(
        name="meeting_show_rate",
        description="Meetings held per meeting scheduled to take place by the cutoff (capped at 1).",
        kind=NUMERIC,
        unit="ratio",
        group="meetings",
        say=rate("{pct} of due meetings held", "no meeting was due yet"),
        missing="no scheduled meeting was due by the cutoff",
    ),
    # stage
    Feature(
        name="stage",
        description="The stage at the cutoff: that of the last stage change, or 'new' if none.",
        kind=CATEGORICAL,
        unit="",
        group="stage",
        say=category("in stage {v}", "stage unknown"),
    ),
    Feature(
        name="stage_rank",
        description="Position of the current stage in the pipeline (0 = new; unknown stage names count as 0).",
        kind=NUMERIC,
        unit="rank",
        group="stage",
        say=stage_rank("current stage"),
    ),
    Feature(
        name="stage_rank_max",
        description="Furthest stage reached so far, as a position in the pipeline (0 = new).",
        kind=NUMERIC,
        unit="rank",
        group="stage",
        say=stage_rank("furthest stage reached"),
    ),
    Feature(
        name="days_in_stage",
        description="Days since the last stage change (since creation if none).",
        kind=NUMERIC,
        unit="days",
        group="stage",
        say=days("{n} day{s} in the current stage", "time in stage unknown"),
    ),
    # deal
    Feature(
        name="deal_amount",
        description="The last deal value known at the cutoff (from any event with an amount).",
        kind=NUMERIC,
        unit="amount",
        group="deal",
        say=quantity("deal worth {v}", "no deal value yet", digits=0),
        missing="no deal value yet",
    ),
    # static
    Feature(
        name="source",
        description="Where the lead came from (a static attribute of the lead).",
        kind=CATEGORICAL,
        unit="",
        group="static",
        say=category("source: {v}", "source unknown"),
        missing="source not recorded",
    ),
]

#: Every fixed feature (and the generated counts of known types), by name, in frame order.
FEATURES: dict[str, Feature] = {f.name: f for f in _FIXED}
if len(FEATURES) != len(_FIXED):  # pragma: no cover - a catalogue bug, caught at import
    raise RuntimeError("duplicate feature name in the catalogue")


#: Context features (:mod:`leadscore.features.context`): they depend on other leads' outcomes known at the cutoff,
#: so they are added by an explicit step after the (partition invariant) feature frame is built.
CONTEXT_FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature(
            name="owner_win_rate",
            description="The owner's share of won leads among their leads closed by the cutoff, shrunk towards the "
            "team's.",
            kind=NUMERIC,
            unit="ratio",
            group="context",
            say=rate("owner wins {pct} of closed leads", "owner's record unknown"),
        ),
        Feature(
            name="owner_closed_leads",
            description="Leads of the same owner won or lost by the cutoff.",
            kind=NUMERIC,
            unit="count",
            group="context",
            say=count("closed lead of the owner", "closed leads of the owner", "so far"),
        ),
    )
}


if any(n.startswith(ATTRIBUTE_PREFIX) for n in (*FEATURES, *CONTEXT_FEATURES)):  # pragma: no cover
    raise RuntimeError(f"a catalogue feature is named in the attributes' namespace {ATTRIBUTE_PREFIX!r}")


def attribute_column(name: str) -> str:
    """The feature column of lead attribute ``name``: the same name in the attributes' namespace.

    Examples
    --------
    >>> attribute_column("stage")
    'attr_stage'
    """
    return f"{ATTRIBUTE_PREFIX}{name}"


def attribute_of(column: str) -> str | None:
    """The lead attribute a feature column holds, or None for any other feature.

    Examples
    --------
    >>> attribute_of("attr_stage"), attribute_of("stage")
    ('stage', None)
    """
    return column[len(ATTRIBUTE_PREFIX) :] if column.startswith(ATTRIBUTE_PREFIX) else None


def attributes_used(features: Iterable[str]) -> list[str]:
    """The lead attributes a model with these input columns reads: those of its ``attr_{name}`` features, and
    the bare attribute names of a model from catalogue 1.0 (before the namespace).

    Examples
    --------
    >>> attributes_used(["email_sent_7d", "source", "attr_stage", "segment"])
    ['stage', 'segment']
    """
    out = []
    for name in features:
        attribute = attribute_of(name)
        if attribute is None and name not in FEATURES and name not in CONTEXT_FEATURES and not _extra_type_of(name):
            attribute = name  # catalogue 1.0
        if attribute is not None:
            out.append(attribute)
    return out


def attribute_feature(name: str, kind: FeatureKind, *, column: str | None = None) -> Feature:
    """The catalogue entry of lead attribute ``name`` (feature ``attr_{name}``, or ``column`` if given).

    Said with the attribute's own name as the CRM sends it; a name the catalogue also uses for a feature
    (``stage``) is said as a lead field, so that a reason never reads like the feature's.
    """
    if kind not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"kind {kind!r} of attribute {name!r} is not {NUMERIC!r} or {CATEGORICAL!r}")
    words = name.replace("_", " ").replace("{", "{{").replace("}", "}}")  # said through str.format
    if name in FEATURES or name in CONTEXT_FEATURES:
        words = f"lead field {words}"
    say = (
        quantity(f"{words}: {{v}}", f"{words} unknown")
        if kind == NUMERIC
        else category(f"{words}: {{v}}", f"{words} unknown")
    )
    return Feature(
        name=attribute_column(name) if column is None else column,
        description=f"Lead attribute {name!r}, passed through from the leads table.",
        kind=kind,
        unit="",
        group="static",
        say=say,
    )


def _extra_type_of(name: str) -> str | None:
    match = re.fullmatch(r"event_([0-9a-z_]+?)_(7d|30d|90d|total|days_since_last|momentum)", name)
    return match.group(1) if match else None


def feature_spec(name: str, *, kind: str | None = None) -> Feature:
    """The catalogue entry for any feature name: fixed, generated or a lead attribute.

    ``attr_{name}`` is lead attribute ``name``. Other names outside the catalogue and the templates are taken as
    lead attributes too, as models of catalogue 1.0 named them (without the namespace). ``kind`` (categorical by
    default) is the attribute's kind.

    Examples
    --------
    >>> feature_spec("email_replied_30d").unit
    'count'
    >>> feature_spec("event_webinar_total").group
    'activity'
    >>> feature_spec("attr_stage").say("proposal")
    'lead field stage: proposal'
    """
    if name in FEATURES:
        return FEATURES[name]
    if name in CONTEXT_FEATURES:
        return CONTEXT_FEATURES[name]
    extra = _extra_type_of(name)
    if extra is not None:
        return {f.name: f for f in _extra_type_features(extra)}[name]
    attribute = attribute_of(name)
    if attribute is not None:
        return attribute_feature(attribute, kind or CATEGORICAL)
    return attribute_feature(name, kind or CATEGORICAL, column=name)


def describe(name: str, value: object) -> str:
    """A feature's value in a salesperson's words.

    Examples
    --------
    >>> describe("email_replied_30d", 3)
    '3 emails replied in the last 30 days'
    >>> describe("has_next_step", 0)
    'no next step scheduled'
    >>> describe("days_since_last_interaction", 12.4)
    'last interaction 12 days ago'
    >>> describe("attr_segment", "enterprise")
    'segment: enterprise'
    """
    return feature_spec(name).say(value)


def feature_names(extra_types: Sequence[str] = (), attributes: Iterable[str] = ()) -> list[str]:
    """The feature columns of a frame built with this vocabulary of extra types and these lead attributes.

    The order is the frame's order: fixed and generated features, then the extra types, then the attributes (in
    their namespace, ``attr_{name}``).

    Raises
    ------
    ValueError
        If two names collide (an attribute named like a feature, two extra types with the same slug).

    Examples
    --------
    >>> names = feature_names(["webinar"], ["segment"])
    >>> names[-7:]
    ['event_webinar_7d', 'event_webinar_30d', 'event_webinar_90d', 'event_webinar_total', \
'event_webinar_days_since_last', 'event_webinar_momentum', 'attr_segment']
    """
    names = list(FEATURES)
    for event_type in extra_types:
        names.extend(extra_type_names(event_type))
    names.extend(attribute_column(a) for a in attributes)
    seen: set[str] = set(KEY_COLUMNS) | {"label"}
    for n in names:
        if n in seen:
            raise ValueError(
                f"feature name {n!r} is used twice (a lead attribute or extra event type named like a feature?)"
            )
        seen.add(n)
    return names


def catalogue_frame(extra_types: Sequence[str] = ()) -> pd.DataFrame:
    """The catalogue as a table (name, group, kind, unit, description, missing), for the docs.

    Examples
    --------
    >>> catalogue_frame().columns.tolist()
    ['name', 'group', 'kind', 'unit', 'description', 'missing']
    """
    specs = list(FEATURES.values())
    for event_type in extra_types:
        specs.extend(_extra_type_features(event_type))
    rows = [
        {
            "name": f.name,
            "group": f.group,
            "kind": f.kind,
            "unit": f.unit,
            "description": f.description,
            "missing": f.missing,
        }
        for f in specs
    ]
    return pd.DataFrame(rows)


# The lead attributes' template, as the docs show it (an attribute's own entry is made by attribute_feature).
ATTRIBUTE_TEMPLATE_ROW = {
    "name": f"{ATTRIBUTE_PREFIX}{{name}}",
    "group": "static",
    "kind": "numeric or categorical",
    "unit": None,
    "description": "Lead attribute {name}: any other column of the leads table (a CRM's custom field), in its own "
    'namespace; a model reads a bounded selection of them (README, "Custom fields").',
    "missing": "{name} unknown",
}


def catalogue_markdown(extra_types: Sequence[str] = ()) -> str:
    """The catalogue as a Markdown table, for the docs (fixed features, then the context features).

    Examples
    --------
    >>> print(catalogue_markdown().splitlines()[2])
    | days_since_created | relationship | numeric | days | Days from the lead's creation (the start of the \
relationship) to the cutoff. |  |
    """
    table = catalogue_frame(extra_types)
    context = pd.DataFrame(
        [
            {"name": f.name, "group": f.group, "kind": f.kind, "unit": f.unit, "description": f.description}
            for f in CONTEXT_FEATURES.values()
        ]
    )
    attributes = pd.DataFrame([ATTRIBUTE_TEMPLATE_ROW])
    table = pd.concat([table, attributes, context], ignore_index=True).fillna("")
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
