"""The engine's words (phrases.Phrase) in the reader's language, where the services store or return them.

The engine (datalake.engine) speaks English Phrases; what is stored for a person — a version's
error, the warnings of its ingest report, the messages of its quality checks, the skipped files
of an image upload — is put in the active language when it is stored: the job's (the language
of the person who asked, lepton.jobs.runner) or the request's. The JSON keeps no template, so a
reader in another language later sees the words of the person who uploaded.
"""

from __future__ import annotations

from lepton.i18n import translated
from phrases import Phrase


def for_reader(value):
    """`value` with every Phrase in it (in dicts, lists, tuples) in the active language; the rest as it is."""
    if isinstance(value, Phrase):
        return translated(value)
    if isinstance(value, dict):
        return {key: for_reader(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [for_reader(item) for item in value]
    return value
