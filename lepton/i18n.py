"""Engine words (phrases.Phrase) in the active language: the request's, or the job's (lepton.jobs.runner)."""

from __future__ import annotations

from django.utils.translation import gettext, ngettext

from phrases import Phrase


def translated(value):
    """`value` in the active language when it is a Phrase (its own phrases first) or a marked plain
    str; other values (numbers, names) as they are. A str the catalogue lacks comes back unchanged.

    Inside a Phrase only the parameters that are Phrases are translated: a plain str there is a
    name or a value (a column called "Name" stays "Name", not the catalogue's word for it)."""
    if isinstance(value, Phrase):
        params = {key: translated(v) if isinstance(v, Phrase) else v for key, v in value.params.items()}
        text = gettext(value.template) if value.plural is None else ngettext(value.template, value.plural, value.n)
        try:
            return text % params if params else text
        except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder: the English is right
            return str(value)
    if isinstance(value, str) and value:
        return gettext(value)
    return value


def translated_fields(fields: dict) -> dict:
    """An error's {field: [reason, …]} with each reason in the active language."""
    return {key: [translated(reason) for reason in reasons] for key, reasons in fields.items()}


def translated_all(value):
    """`value` (an engine's report: dicts, lists) with each Phrase in it in the active language, before
    it is stored as JSON for a page (stored as it is, a Phrase would stay English). Plain str stay as they are."""
    if isinstance(value, Phrase):
        return translated(value)
    if isinstance(value, dict):
        return {key: translated_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [translated_all(item) for item in value]
    return value


def error_text(exc: BaseException) -> str:
    """What an engine's exception says, in the active language: the Phrase it was raised with
    (str(exc) would keep only its English), else its text as it is (another library's words)."""
    said = exc.args[0] if len(exc.args) == 1 else None
    return translated(said) if isinstance(said, Phrase) else str(exc)
