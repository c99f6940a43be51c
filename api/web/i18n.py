"""The web app's languages: which one a reader gets, the app's words in it, and numbers and dates written for it.

The language is the ``ls_lang`` cookie set by the switch in the page header, else the browser's
``Accept-Language`` (best match among :data:`LANGUAGES`), else English. Words are looked up by their English text
(:data:`SPANISH_UI`; a test checks that every English text a template uses has its Spanish words), and the
reasons come from :mod:`leadscore.features.phrases`, which says each feature in both languages. Numbers, dates
and percentages are written by Babel for the language (``1.234,5`` and ``4 dic 2025`` in Spanish).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pandas as pd
from babel.core import negotiate_locale
from babel.dates import format_date, format_time
from babel.numbers import format_decimal, format_percent

from leadscore.features.phrases import LANGUAGES, SPANISH, words

LANG_COOKIE = "ls_lang"
#: The language's name as shown in the switch (in that language).
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "es": "Español"}

#: The app's English words in Spanish. Stage names and the reasons' words are in ``phrases.SPANISH``.
SPANISH_UI: dict[str, str] = {
    "Sales follow-up": "Seguimiento comercial",
    "Skip to content": "Saltar al contenido",
    "Main menu": "Menú principal",
    "Today's leads": "Oportunidades de hoy",
    "Team": "Equipo",
    "Team performance": "Rendimiento del equipo",
    "Goals": "Objetivos",
    "Funnel": "Embudo",
    "Model": "Modelo",
    "Language": "Idioma",
    "Change": "Cambiar",
    "Sign in": "Iniciar sesión",
    "Sign out": "Cerrar sesión",
    "API key": "Clave de API",
    "An API key with the read scope (leadscore keys create --scope read).": (
        "Una clave de API con el permiso read (leadscore keys create --scope read)."
    ),
    "That key cannot sign in: it is unknown or lacks the read scope.": (
        "Esa clave no puede iniciar sesión: es desconocida o no tiene el permiso read."
    ),
    "Too many failed sign-ins from here: wait a minute and try again.": (
        "Demasiados intentos fallidos desde aquí: espere un minuto y vuelva a intentarlo."
    ),
    "The form had expired: please try again.": "El formulario había caducado: inténtelo de nuevo.",
    "Signed in as": "Sesión de",
    "Open leads ranked by their probability of converting, as of": "Oportunidades abiertas ordenadas por su "
    "probabilidad de conversión, a fecha de",
    "Filters": "Filtros",
    "Salesperson": "Comercial",
    "Stage": "Etapa",
    "Grade": "Calificación",
    "Source": "Origen",
    "Any": "Cualquiera",
    "Sort by": "Ordenar por",
    "Probability": "Probabilidad",
    "Expected value": "Valor esperado",
    "Only leads that need follow-up": "Solo las que necesitan seguimiento",
    "Apply": "Aplicar",
    "Lead": "Oportunidad",
    "Relationship start": "Inicio de la relación",
    "Last interaction": "Última interacción",
    "Next scheduled": "Próximo paso",
    "Days since last touch": "Días sin contacto",
    "Needs follow-up": "Necesita seguimiento",
    "yes": "sí",
    "no": "no",
    "none": "ninguno",
    "Previous": "Anterior",
    "Next": "Siguiente",
    "Page": "Página",
    "of": "de",
    "leads": "oportunidades",
    "No open lead matches these filters.": "Ninguna oportunidad abierta cumple estos filtros.",
    "Percentile": "Percentil",
    "Deal amount": "Importe",
    "Score over the last weeks": "Puntuación en las últimas semanas",
    "Probability of converting, recomputed as of each week with the model in use.": (
        "Probabilidad de conversión, recalculada a fecha de cada semana con el modelo en uso."
    ),
    "Why the score is up": "Por qué sube la puntuación",
    "Why the score is down": "Por qué baja la puntuación",
    "Nothing notable.": "Nada destacable.",
    "Timeline": "Historial",
    "When": "Cuándo",
    "What": "Qué",
    "Details": "Detalles",
    "Owner": "Comercial",
    "This lead is closed or not open yet: it has no score now.": (
        "Esta oportunidad está cerrada o aún no está abierta: no tiene puntuación."
    ),
    "Back to today's leads": "Volver a las oportunidades de hoy",
    "minutes": "minutos",
    "for": "para",
    "to stage": "a la etapa",
    "amount": "importe",
    # closing events (the other event types are said as the reasons say them, in phrases.SPANISH)
    "won": "ganada",
    "lost": "perdida",
    # team, goals, funnel, model
    "Period": "Periodo",
    "From": "Desde",
    "To": "Hasta",
    "Show": "Mostrar",
    "Team median": "Mediana del equipo",
    "Needs help": "Necesita ayuda",
    "Who needs help": "Quién necesita ayuda",
    "Each figure against the team median; a salesperson is flagged where they are well below it.": (
        "Cada cifra frente a la mediana del equipo; se señala a quien está claramente por debajo."
    ),
    "Emails sent": "Correos enviados",
    "Emails opened": "Correos abiertos",
    "Emails replied": "Correos respondidos",
    "Cold calls": "Llamadas en frío",
    "Average call (min)": "Llamada media (min)",
    "Meetings scheduled": "Reuniones programadas",
    "Meetings held": "Reuniones celebradas",
    "Meetings rejected": "Reuniones rechazadas",
    "Meetings cancelled": "Reuniones canceladas",
    "Lost": "Perdidas",
    "Wins": "Ganadas",
    "Revenue": "Ingresos",
    "Conversions": "Conversiones",
    "Expenses": "Gastos",
    "Lost reasons": "Motivos de pérdida",
    "Reason": "Motivo",
    "Count": "Número",
    "Share": "Proporción",
    "Metric": "Métrica",
    "Scope": "Ámbito",
    "Target": "Objetivo",
    "Actual": "Real",
    "Progress": "Progreso",
    "Daily target": "Objetivo diario",
    "Needed per day now": "Necesario por día ahora",
    "On track": "En camino",
    "Behind": "Retrasado",
    "Last period, same point": "Periodo anterior, mismo punto",
    "Cumulative this month against the goal": "Acumulado del mes frente al objetivo",
    "This month against last": "Este mes frente al anterior",
    "This month": "Este mes",
    "Last month": "Mes anterior",
    "Open pipeline forecast against the month's goal": "Previsión de la cartera abierta frente al objetivo del mes",
    "Forecast": "Previsión",
    "Low": "Mínimo",
    "High": "Máximo",
    "Goal": "Objetivo",
    "No goals are set: send them with POST /api/v1/goals.": "No hay objetivos: envíelos con POST /api/v1/goals.",
    "day": "día",
    "week": "semana",
    "month": "mes",
    "team": "equipo",
    "revenue": "ingresos",
    "conversions": "conversiones",
    "expenses": "gastos",
    "new_leads": "nuevas oportunidades",
    "meetings": "reuniones",
    "calls": "llamadas",
    "emails": "correos",
    "Group by": "Agrupar por",
    "Reached": "Alcanzan",
    "Conversion to next": "Conversión a la siguiente",
    "Drop-off": "Abandono",
    "Median days in stage": "Mediana de días en la etapa",
    "Stage conversion": "Conversión por etapa",
    "salesperson": "comercial",
    "source": "origen",
    "period": "periodo",
    "all": "todo",
    "Version": "Versión",
    "Trained": "Entrenado",
    "Loaded": "Cargado",
    "Kind": "Tipo",
    "Calibration": "Calibración",
    "Accuracy on the latest period": "Precisión en el último periodo",
    "AUC": "AUC",
    "Lift in the top decile": "Lift en el decil superior",
    "Predicted": "Prevista",
    "Observed": "Observada",
    "Calibration chart": "Gráfico de calibración",
    "Lift by decile": "Lift por decil",
    "Promises against outcomes": "Promesas frente a resultados",
    "Each stored score against what happened, once its horizon has passed or the lead closed; "
    "a lead counts once a week, with its last score.": "Cada puntuación guardada frente a lo que ocurrió, "
    "pasado su horizonte o cerrada la oportunidad; una oportunidad cuenta una vez por semana, con su última "
    "puntuación.",
    "Week": "Semana",
    "Scores": "Puntuaciones",
    "Resolved": "Resueltas",
    "Waiting": "Pendientes",
    "Realised": "Realizada",
    "Reliability by score band": "Fiabilidad por franja de puntuación",
    "No stored scores of this version yet.": "Aún no hay puntuaciones guardadas de esta versión.",
    "Promotion gate's decisions": "Decisiones de la promoción",
    "Decision": "Decisión",
    "No model is loaded.": "No hay ningún modelo cargado.",
    "Page not found": "Página no encontrada",
    "Aliases": "Alias",
    "At training (validation period)": "En el entrenamiento (periodo de validación)",
    "Chance of reaching the goal": "Probabilidad de alcanzar el objetivo",
    "Horizon": "Horizonte",
    "days": "días",
    "Leads created": "Oportunidades creadas",
    "Leads open between": "Oportunidades abiertas entre",
    "and": "y",
    "snapshots": "instantáneas",
    "Not enough known outcomes yet to judge the latest period.": (
        "Aún no hay suficientes resultados conocidos para juzgar el último periodo."
    ),
    "Registered": "Registrado",
    "Status": "Estado",
    "more than 20 % behind the team median": "más de un 20 % por debajo de la mediana del equipo",
    "Last 90 days": "Últimos 90 días",
    "Last 12 months": "Últimos 12 meses",
    "All time": "Todo el periodo",
    # lost reasons of the simulated CRM
    "no_response": "sin respuesta",
    "price": "precio",
    "competitor": "competencia",
    "timing": "momento",
    "no_budget": "sin presupuesto",
    "No lead with that id.": "Ninguna oportunidad con ese identificador.",
    "Scored as of": "Puntuada a fecha de",
    "new data since: the score is being updated": "hay datos nuevos: la puntuación se está actualizando",
    # error pages
    "This request could not be read.": "No se ha podido leer esta petición.",
    "This page cannot do that.": "Esta página no admite esa operación.",
    "This cannot be shown now.": "Esto no se puede mostrar ahora.",
    "Some values in the address are not valid.": "Algunos valores de la dirección no son válidos.",
    "The service cannot answer now: try again in a moment.": (
        "El servicio no puede responder ahora: inténtelo de nuevo en un momento."
    ),
    "Something went wrong on our side.": "Algo ha fallado por nuestra parte.",
    "Check these values:": "Revise estos valores:",
    "Reference for the administrator:": "Referencia para el administrador:",
    "Error": "Error",
}

_UI = {"en": {}, "es": SPANISH_UI}

#: How the timeline names an event type (unknown types: their name with spaces).
EVENT_LABELS: dict[str, str] = {
    "email_sent": "email sent",
    "email_opened": "email opened",
    "email_replied": "email replied",
    "call": "call",
    "meeting_scheduled": "meeting scheduled",
    "meeting_held": "meeting held",
    "meeting_cancelled": "meeting cancelled",
    "meeting_rejected": "meeting rejected",
    "web_visit": "web visit",
    "form_submitted": "form submitted",
    "stage_changed": "stage change",
    "won": "won",
    "lost": "lost",
}


def event_label(event_type: str, lang: str) -> str:
    """An event type as the timeline says it (``email_sent`` → ``email sent``, ``correo enviado``)."""
    return translate(EVENT_LABELS.get(event_type, str(event_type).replace("_", " ")), lang)


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The reader's language: the cookie's if valid, else the best match of ``Accept-Language``, else English.

    Examples
    --------
    >>> choose_language(None, "es-ES,es;q=0.9,en;q=0.8"), choose_language("en", "es"), choose_language(None, "fr")
    ('es', 'en', 'en')
    """
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    wanted = []
    for part in (accept_language or "").split(",")[:20]:  # a header is a short list; refuse to walk a long one
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            wanted.append((quality, tag.replace("-", "_")))
    preferred = [tag for _, tag in sorted(wanted, key=lambda pair: -pair[0])]
    return negotiate_locale(preferred, list(LANGUAGES)) or "en"


def translate(text: str, lang: str) -> str:
    """The app's English ``text`` in ``lang`` (stage names and the reasons' words included)."""
    if lang == "en":
        return text
    return _UI[lang].get(text) or words(text, lang)


def has_words(text: str, lang: str) -> bool:
    return lang == "en" or text in _UI[lang] or text in SPANISH


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def fmt_number(value: object, lang: str, digits: int = 0) -> str:
    """A number with grouping and ``digits`` decimals (``—`` for none)."""
    if _missing(value):
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(float(value), format=pattern, locale=lang)  # type: ignore[arg-type]


def fmt_percent(value: object, lang: str, digits: int = 1) -> str:
    """A ratio as a percentage (``12.3%``; Spanish ``12,3 %``)."""
    if _missing(value):
        return "—"
    sign = "%" if lang == "en" else "\u00a0%"  # Spanish puts a no-break space before the sign
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + sign
    return format_percent(float(value), format=pattern, locale=lang)  # type: ignore[arg-type]


def _as_datetime(value: object) -> datetime | None:
    if _missing(value):
        return None
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    if pd.isna(stamp):
        return None
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()


def fmt_date(value: object, lang: str) -> str:
    """A date, medium length (``Dec 4, 2025``; ``4 dic 2025``)."""
    moment = _as_datetime(value)
    return "—" if moment is None else format_date(moment.date(), format="medium", locale=lang)


def fmt_datetime(value: object, lang: str) -> str:
    """A moment in UTC, to the minute."""
    moment = _as_datetime(value)
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC)
    day = format_date(moment.date(), format="medium", locale=lang)
    return f"{day} {format_time(moment.time(), 'HH:mm', locale=lang)} UTC"


def fmt_day(value: date, lang: str) -> str:
    """A short day (``Dec 4``; ``4 dic``) for chart axes."""
    return format_date(value, format="d MMM" if lang != "en" else "MMM d", locale=lang)
