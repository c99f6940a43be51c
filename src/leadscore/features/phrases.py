"""How to say a feature's value to a salesperson: each helper returns a ``say(value, lang="en") -> str`` for the
catalogue, in English or Spanish (:data:`LANGUAGES`).

Every ``say`` handles a missing value too (None, NaN, ``pd.NA``, ``pd.NaT``), with the text it was given for it.
The catalogue gives the English words; :data:`SPANISH` says each of them in Spanish (a test checks that every
feature has its Spanish words), and numbers are written the Spanish way (``12,5``, ``40 %``) with Babel.

:func:`reason_topic` says which facts are the same to a salesperson (one count over several windows, a rate and
its counts): the model's reasons sum the contributions of one topic and phrase them once.

Examples
--------
>>> count("call", "calls", "in the last 30 days")(1)
'1 call in the last 30 days'
>>> count("call", "calls", "in the last 30 days")(2, lang="es")
'2 llamadas en los últimos 30 días'
>>> ago("last reply", "no replies yet")(float("nan"))
'no replies yet'
>>> reason_topic("meeting_held_90d") == reason_topic("meeting_held_total") == reason_topic("meeting_show_rate")
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd
from babel.numbers import format_decimal, format_percent

from leadscore.data.contracts import STAGES

#: The languages a reason can be said in.
LANGUAGES: tuple[str, ...] = ("en", "es")

Say = Callable[..., str]

#: The catalogue's English words and templates in Spanish. Names of stages are here too (the web app uses them).
SPANISH: dict[str, str] = {
    # nouns of counted things (singular, plural)
    "interaction": "interacción",
    "interactions": "interacciones",
    "email sent": "correo enviado",
    "emails sent": "correos enviados",
    "email opened": "correo abierto",
    "emails opened": "correos abiertos",
    "email replied": "correo respondido",
    "emails replied": "correos respondidos",
    "call": "llamada",
    "calls": "llamadas",
    "meeting scheduled": "reunión programada",
    "meetings scheduled": "reuniones programadas",
    "meeting held": "reunión celebrada",
    "meetings held": "reuniones celebradas",
    "meeting cancelled": "reunión cancelada",
    "meetings cancelled": "reuniones canceladas",
    "meeting rejected": "reunión rechazada",
    "meetings rejected": "reuniones rechazadas",
    "web visit": "visita web",
    "web visits": "visitas web",
    "form submitted": "formulario enviado",
    "forms submitted": "formularios enviados",
    "stage change": "cambio de etapa",
    "stage changes": "cambios de etapa",
    "other event": "otro evento",
    "other events": "otros eventos",
    "cold call": "llamada en frío",
    "cold calls": "llamadas en frío",
    "closed lead of the owner": "oportunidad cerrada del comercial",
    "closed leads of the owner": "oportunidades cerradas del comercial",
    # windows
    "in the last 7 days": "en los últimos 7 días",
    "in the last 30 days": "en los últimos 30 días",
    "in the last 90 days": "en los últimos 90 días",
    "so far": "hasta ahora",
    # moments ("... N days ago") and what is said when there is none
    "first interaction": "primera interacción",
    "last interaction": "última interacción",
    "no interaction yet": "ninguna interacción todavía",
    "last other event": "último otro evento",
    "no other events": "ningún otro evento",
    "last reply": "última respuesta",
    "no replies yet": "ninguna respuesta todavía",
    # templates
    "relationship started {n} day{s} ago": "la relación empezó hace {n} día{s}",
    "start of the relationship unknown": "inicio de la relación desconocido",
    "next step in {n} day{s}": "próximo paso en {n} día{s}",
    "no next step scheduled": "ningún próximo paso programado",
    "a next step is scheduled": "hay un próximo paso programado",
    "{pct} of emails opened": "{pct} de los correos abiertos",
    "{pct} of emails replied": "{pct} de los correos respondidos",
    "no emails sent yet": "ningún correo enviado todavía",
    "replies after {v} hours on average": "responde tras {v} horas de media",
    "no replies to a sent email yet": "ninguna respuesta a un correo todavía",
    "calls last {v} minutes on average": "las llamadas duran {v} minutos de media",
    "no call durations yet": "ninguna duración de llamada todavía",
    "{v} minutes on the phone so far": "{v} minutos al teléfono hasta ahora",
    "no call time yet": "ningún tiempo al teléfono todavía",
    "{pct} of due meetings held": "{pct} de las reuniones previstas celebradas",
    "no meeting was due yet": "ninguna reunión prevista todavía",
    "in stage {v}": "en la etapa {v}",
    "stage unknown": "etapa desconocida",
    "current stage": "etapa actual",
    "furthest stage reached": "etapa más avanzada alcanzada",
    "{n} day{s} in the current stage": "{n} día{s} en la etapa actual",
    "time in stage unknown": "tiempo en la etapa desconocido",
    "deal worth {v}": "operación de {v}",
    "no deal value yet": "sin importe de operación todavía",
    "source: {v}": "origen: {v}",
    "source unknown": "origen desconocido",
    "owner wins {pct} of closed leads": "el comercial gana el {pct} de sus oportunidades cerradas",
    "owner's record unknown": "historial del comercial desconocido",
    "last event: {v}": "último evento: {v}",
    "no event yet": "ningún evento todavía",
    "event before the last: {v}": "evento anterior al último: {v}",
    "fewer than two events yet": "menos de dos eventos todavía",
    # stages
    "new": "nuevo",
    "contacted": "contactado",
    "qualified": "cualificado",
    "proposal": "propuesta",
    "negotiation": "negociación",
}

# Words made from data (an unknown event type's name, a lead attribute's name): the data's word stays, the
# grammar around it is translated.
_SPANISH_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^last (.+) event$"), r"último evento \1"),
    (re.compile(r"^no (.+) events$"), r"ningún evento \1"),
    (re.compile(r"^(.+) events$"), r"eventos \1"),
    (re.compile(r"^(.+) event$"), r"evento \1"),
    (re.compile(r"^(.+) unknown$"), r"\1: desconocido"),
)

# The sentence frames of each helper, per language.
_FRAMES: dict[str, dict[str, str]] = {
    "en": {
        "count": "{n} {noun} {when}",
        "none": "no {plural} {when}",
        "count_unknown": "{plural} {when}: unknown",
        "ago": "{what} {n} day{s} ago",
        "ago_today": "{what} less than a day ago",
        "less_than_1": "less than 1",
        "flag_unknown": "unknown whether {yes}",
        "rank": "{prefix}: {name} ({rank} of {n})",
        "rank_unknown": "{prefix}: unknown",
        "momentum_up": "activity up {x}x on the previous 30 days",
        "momentum_down": "activity down to {x}x of the previous 30 days",
        "momentum_steady": "activity steady against the previous 30 days",
        "momentum_unknown": "activity trend unknown",
    },
    "es": {
        "count": "{n} {noun} {when}",
        "none": "sin {plural} {when}",
        "count_unknown": "{plural} {when}: desconocido",
        "ago": "{what} hace {n} día{s}",
        "ago_today": "{what} hace menos de un día",
        "less_than_1": "menos de 1",
        "flag_unknown": "no se sabe si {yes}",
        "rank": "{prefix}: {name} ({rank} de {n})",
        "rank_unknown": "{prefix}: desconocida",
        "momentum_up": "actividad {x} veces la de los 30 días anteriores",
        "momentum_down": "actividad bajada a {x} veces la de los 30 días anteriores",
        "momentum_steady": "actividad estable frente a los 30 días anteriores",
        "momentum_unknown": "tendencia de actividad desconocida",
    },
}


def check_language(lang: str) -> str:
    """``lang`` if it is one of :data:`LANGUAGES`, else a ValueError naming the choices."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {list(LANGUAGES)}")
    return lang


def words(text: str, lang: str = "en") -> str:
    """The catalogue's English ``text`` in ``lang`` (unknown words are left as they are).

    Examples
    --------
    >>> words("no next step scheduled", "es")
    'ningún próximo paso programado'
    >>> words("last webinar event", "es")
    'último evento webinar'
    """
    if check_language(lang) == "en":
        return text
    if text in SPANISH:
        return SPANISH[text]
    for pattern, replacement in _SPANISH_PATTERNS:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return text


def is_spoken(text: str, lang: str) -> bool:
    """True if ``text`` has its own words in ``lang`` (English always has them)."""
    return lang == "en" or text in SPANISH or any(p.match(text) for p, _ in _SPANISH_PATTERNS)


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: float, digits: int = 1, lang: str = "en") -> str:
    """Whole numbers without decimals, others rounded to ``digits``, grouped by thousands the language's way.

    Examples
    --------
    >>> number(12.46), number(12.46, lang="es"), number(36100.0, 0), number(36100.0, 0, lang="es")
    ('12.5', '12,5', '36,100', '36.100')
    >>> number(1234567.25, 2), number(1234567.25, 2, lang="es")
    ('1,234,567.25', '1.234.567,25')
    """
    value = float(value)
    rounded = round(value, digits)
    whole = rounded == round(rounded)
    if lang == "en":  # Python's own grouping is English's, and far cheaper than Babel on the scoring path
        return f"{int(round(rounded)):,}" if whole else f"{value:,.{digits}f}"
    pattern = "#,##0" if whole else "#,##0." + "0" * digits
    return format_decimal(rounded, format=pattern, locale=lang)


def percent(ratio: float, lang: str = "en") -> str:
    """A ratio as a whole percentage (``40%``; Spanish ``40 %``)."""
    if lang == "en":
        return f"{100 * float(ratio):.0f}%"
    return format_percent(float(ratio), locale=lang)  # the locale's own pattern: "40 %" with a no-break space


def count(singular: str, plural: str, when: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        frame = _FRAMES[check_language(lang)]
        many, period = words(plural, lang), words(when, lang)
        if is_missing(value):
            return frame["count_unknown"].format(plural=many, when=period)
        n = float(value)  # type: ignore[arg-type]
        noun = words(singular, lang) if n == 1 else many
        if not n:
            return frame["none"].format(plural=many, when=period)
        return frame["count"].format(n=number(n, lang=lang), noun=noun, when=period)

    return say


def ago(what: str, missing_text: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        frame = _FRAMES[check_language(lang)]
        if is_missing(value):
            return words(missing_text, lang)
        days = float(value)  # type: ignore[arg-type]
        if days < 1:
            return frame["ago_today"].format(what=words(what, lang))
        return frame["ago"].format(what=words(what, lang), n=number(days, 0, lang), s="s" if round(days) != 1 else "")

    return say


def days(template: str, missing_text: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        frame = _FRAMES[check_language(lang)]
        if is_missing(value):
            return words(missing_text, lang)
        days = float(value)  # type: ignore[arg-type]
        n = number(days, 0, lang) if days >= 1 else frame["less_than_1"]
        return words(template, lang).format(n=n, s="s" if days >= 1 and round(days) != 1 else "")

    return say


def rate(template: str, missing_text: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        if is_missing(value):
            return words(missing_text, lang)
        return words(template, lang).format(pct=percent(float(value), lang))  # type: ignore[arg-type]

    return say


def flag(yes: str, no: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        if is_missing(value):
            return _FRAMES[check_language(lang)]["flag_unknown"].format(yes=words(yes, lang))
        return words(yes, lang) if float(value) else words(no, lang)  # type: ignore[arg-type]

    return say


def quantity(template: str, missing_text: str, digits: int = 1) -> Say:
    def say(value: object, lang: str = "en") -> str:
        if is_missing(value):
            return words(missing_text, lang)
        return words(template, lang).format(v=number(float(value), digits, lang))  # type: ignore[arg-type]

    return say


def category(template: str, missing_text: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        if is_missing(value) or str(value) == "":
            return words(missing_text, lang)
        if isinstance(value, int | float) and not isinstance(value, bool):  # numpy numbers included
            value = number(value, lang=lang)
        elif lang != "en" and str(value) in SPANISH:  # a stage's name
            value = SPANISH[str(value)]
        return words(template, lang).format(v=value)

    return say


def momentum(value: object, lang: str = "en") -> str:
    frame = _FRAMES[check_language(lang)]
    if is_missing(value):
        return frame["momentum_unknown"]
    ratio = float(value)  # type: ignore[arg-type]
    if ratio >= 1.05:
        return frame["momentum_up"].format(x=number(ratio, 1, lang) if lang != "en" else f"{ratio:.1f}")
    if ratio <= 0.95:
        return frame["momentum_down"].format(x=number(ratio, 1, lang) if lang != "en" else f"{ratio:.1f}")
    return frame["momentum_steady"]


def stage_rank(prefix: str) -> Say:
    def say(value: object, lang: str = "en") -> str:
        frame = _FRAMES[check_language(lang)]
        if is_missing(value):
            return frame["rank_unknown"].format(prefix=words(prefix, lang))
        rank = int(float(value))  # type: ignore[arg-type]
        name = words(STAGES[rank], lang) if 0 <= rank < len(STAGES) else str(rank)
        return frame["rank"].format(prefix=words(prefix, lang), name=name, rank=rank + 1, n=len(STAGES))

    return say


# ----------------------------------------------------------------------------------------------------------------
# Which features tell the same fact.

_WINDOW = re.compile(r"^(.+)_(7d|30d|90d|total)$")
_EXTRA_RECENCY = re.compile(r"^(event_.+)_days_since_last$")

# Features that restate a fact another feature family holds: a rate and its counts, a flag and its date, a
# ranking and its name, a recency and its counts.
_SAME_FACT: dict[str, str] = {
    "activity_momentum": "interactions",
    "email_open_rate": "email_opened",
    "email_reply_rate": "email_replied",
    "email_reply_hours_mean": "email_replied",
    "days_since_last_reply": "email_replied",
    "cold_calls": "call",
    "call_minutes_mean": "call",
    "call_minutes_total": "call",
    "meeting_show_rate": "meeting_held",
    "has_next_step": "next_step",
    "days_until_next_step": "next_step",
    "stage_rank": "stage",
    "days_since_last_other_event": "other_events",
    "owner_closed_leads": "owner_win_rate",
}


def reason_topic(name: str) -> str:
    """The fact a feature tells a salesperson: features with the same topic are one reason, phrased once.

    A count over several windows is one topic (``meeting_held_7d`` ... ``meeting_held_total``), and so are a rate
    with its counts (``email_reply_rate`` with ``email_replied_*``), the next step's flag and its date, the
    stage's name and rank. Any other feature is its own topic.

    Examples
    --------
    >>> reason_topic("interactions_90d"), reason_topic("activity_momentum"), reason_topic("has_next_step")
    ('interactions', 'interactions', 'next_step')
    >>> reason_topic("event_webinar_days_since_last"), reason_topic("segment")
    ('event_webinar', 'segment')
    """
    windowed = _WINDOW.match(name)
    base = windowed.group(1) if windowed else name
    recency = _EXTRA_RECENCY.match(base)
    if recency:
        return recency.group(1)
    return _SAME_FACT.get(base, base)
