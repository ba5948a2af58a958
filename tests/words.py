"""Reading the engines' words in Chinese: the helpers of the tests that check a refusal, a progress
step or a note reaches a zh-hans reader translated (tests/*/test_language.py, test_zh.py,
test_engine_words.py, test_formats.py)."""

import functools
import re

import polib
from django.conf import settings
from django.utils import translation

from lepton.i18n import translated
from phrases import Phrase

CJK = re.compile(r"[\u4e00-\u9fff]")


@functools.cache
def catalogue() -> dict:
    """{(msgid, msgid_plural or None): the entry} of the zh-hans catalogue, as committed."""
    po = polib.pofile(str(settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    return {(entry.msgid, entry.msgid_plural or None): entry for entry in po if not entry.obsolete}


def templates(value) -> list[tuple[str, str | None]]:
    """The marked English in `value` at any depth: a Phrase (or an error keeping `template` and
    `params`, like scheduling's InstanceError), the phrases put into it, and those in lists and dicts.
    A template of placeholders and punctuation alone ("%(a)s; %(b)s") joins phrases and has no words."""
    found, pending = [], [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Phrase) or (hasattr(item, "template") and hasattr(item, "params")):
            if re.sub(r"%\(\w+\)s", "", item.template).strip("; ") or getattr(item, "plural", None):
                found.append((item.template, getattr(item, "plural", None)))
            pending.extend(item.params.values())
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return found


def untranslated(keys: list[tuple[str, str | None]]) -> list:
    """Those of `keys` ((msgid, plural) pairs) the catalogue lacks, or holds fuzzy or empty."""

    def done(entry) -> bool:
        strings = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        return "fuzzy" not in entry.flags and all(strings)

    return [key for key in keys if key not in catalogue() or not done(catalogue()[key])]


def in_chinese(value) -> str:
    with translation.override("zh-hans"):
        return translated(value)


def assert_chinese(value) -> str:
    """`value` (a Phrase) read in zh-hans: its templates translated in the catalogue, Chinese, every
    placeholder filled, not the English. Returns the Chinese."""
    assert isinstance(value, Phrase), f"not marked for translation: {value!r}"
    assert not untranslated(templates(value)), "makemessages -l zh_Hans and translate them"
    chinese = in_chinese(value)
    assert CJK.search(chinese) and "%(" not in chinese and chinese != str(value), chinese
    return chinese
