"""The zh-hans catalogue: every message of the code and templates translated, the .mo built from the .po.

Many users read Chinese; an English string left in the zh-hans interface is a bug. These tests fail
when a change adds a message and nobody ran `makemessages` and translated it (the commands are in the
README's Translations section). The .mo is built, not committed: manage.py compile_translations (pure
Python) by `make run`/`make test`, the Dockerfile and tests/conftest.py.
"""

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lepton.management.commands.compile_translations import compile_catalogue

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCES = ["datalake", "lepton", "models_repo", "monitoring", "phrases", "scheduling", "templates", "manage.py"]

needs_gettext = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")


def statistics(po: Path) -> str:
    done = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


@needs_gettext
def test_the_catalogue_has_no_untranslated_or_fuzzy_message():
    report = statistics(PO)
    assert "translated messages" in report
    assert "untranslated" not in report and "fuzzy" not in report, report


@needs_gettext
def test_the_pure_python_build_equals_gnu_msgfmt(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(PO)], check=True)
    with MO.open("rb") as built, fresh.open("rb") as compiled:
        # Every message alike; the header ("" key) differs only in what msgfmt leaves out (POT-Creation-Date).
        ours = {k: v for k, v in gettext.GNUTranslations(built)._catalog.items() if k != ""}
        gnu = {k: v for k, v in gettext.GNUTranslations(compiled)._catalog.items() if k != ""}
        assert len(ours) > 1000 and ours == gnu, "django.mo differs from msgfmt's: run manage.py compile_translations --force"


def test_compile_translations_builds_a_missing_or_stale_catalogue_only(tmp_path):
    po = tmp_path / "django.po"
    shutil.copy(PO, po)
    assert compile_catalogue(po) is True
    with po.with_suffix(".mo").open("rb") as built:
        catalogue = gettext.GNUTranslations(built)
    assert catalogue.gettext("Jobs") == "作业" and catalogue.gettext("Gantt chart") == "甘特图"
    assert compile_catalogue(po) is False, "an up-to-date .mo is left as it is"
    later = po.with_suffix(".mo").stat().st_mtime + 5
    os.utime(po, (later, later))
    assert compile_catalogue(po) is True, "a .po changed after its .mo is compiled again"
    assert sorted(tmp_path.iterdir()) == sorted([po, po.with_suffix(".mo")]), "no partial file is left behind"


@needs_gettext
@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is not installed")
def test_every_message_in_the_code_is_in_the_catalogue(tmp_path):
    # makemessages on a copy of the sources, so that the checkout is not touched.
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "lepton.settings", "LEPTON_VAR_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    report = statistics(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    assert "untranslated" not in report and "fuzzy" not in report, (
        f"{report}: run manage.py makemessages -l zh_Hans and translate the new messages"
    )
