"""Words that a computation writes in English and a reader sees in their own language.

The engines (datalake.engine, models_repo.engine, scheduling.engine) do not import Django.
They mark a fixed text with `gettext_noop` (and `ngettext` for a count), and a text with
numbers or names in it with `phrase(gettext_noop("… %(rows)s …"), rows=12)`. What they get
is a `Phrase`: a str holding the English text, so logs, tests and the CLI read it as before,
that also keeps the marked template and its parameters. The platform puts it in the
reader's language where it is shown or stored for a person (lepton.i18n.translated).

makemessages extracts the names gettext_noop and ngettext (with its plural) from calls here.
"""

from __future__ import annotations


class Phrase(str):
    """English words made from a marked template ("%(n)s rows read") and what goes into it.

    `template` (and `plural`, chosen by `n`) is the marked English, `params` what goes into
    it (themselves Phrases where they are words to translate); the str is the English text.
    """

    template: str
    plural: str | None
    n: int | None
    params: dict

    def __new__(cls, template: str, plural: str | None = None, n: int | None = None, /, **params) -> Phrase:
        params = params | ({"n": n} if plural is not None else {})
        english = plural if plural is not None and n != 1 else template
        self = super().__new__(cls, english % params if params else english)
        self.template, self.plural, self.n, self.params = str(template), plural, n, params
        return self

    def __reduce__(self):  # pickled through Celery results or multiprocessing: keep the template
        return (_rebuild, (self.template, self.plural, self.n, self.params))


def _rebuild(template, plural, n, params):
    return Phrase(template, plural, n, **params)


def gettext_noop(message: str) -> Phrase:
    """Marks a fixed English text for the translation catalogue; translated where it is shown."""
    return Phrase(message)


def ngettext(singular: str, plural: str, n: int) -> Phrase:
    """'%(n)s job' or '%(n)s jobs' in English, marked for translation."""
    return Phrase(singular, plural, n)


def phrase(template: str, /, **params) -> Phrase:
    """A marked template with its parameters: phrase(gettext_noop("Fitting %(label)s"), label=label)."""
    return Phrase(template, **params)
