"""The ja catalogue is complete and compiled: every user-facing string in
the code has a Japanese translation, and the committed .mo matches the .po.

Needs GNU gettext (xgettext, msgmerge) to extract strings; .ci/run installs
it (Debian package `gettext`)."""

import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "ja" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCES = [
    "config",
    "core",
    "crm",
    "crisis",
    "outreach",
    "reports",
    "tickets",
    "templates",
    "manage.py",
]

needs_gettext = pytest.mark.skipif(
    shutil.which("xgettext") is None or shutil.which("msgmerge") is None,
    reason="GNU gettext is not installed (Debian package: gettext)",
)


@needs_gettext
def test_every_string_in_the_code_is_translated(tmp_path):
    # extract afresh into a copy of the sources, merging the committed catalogue
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-obsolete"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    fresh = polib.pofile(str(tmp_path / "locale" / "ja" / "LC_MESSAGES" / "django.po"))
    missing = [entry.msgid for entry in fresh if not entry.translated() or entry.fuzzy]
    assert not missing, f"{len(missing)} strings lack a Japanese translation: {missing[:20]}"


def test_compiled_catalogue_matches_the_po():
    po = polib.pofile(str(PO))
    with MO.open("rb") as handle:
        mo = gettext.GNUTranslations(handle)
    stale = [
        entry.msgid
        for entry in po.translated_entries()
        if not entry.msgid_plural
        and (mo.pgettext(entry.msgctxt, entry.msgid) if entry.msgctxt else mo.gettext(entry.msgid))
        != entry.msgstr
    ]
    assert not stale, f"locale/ja/LC_MESSAGES/django.mo is stale (make messages): {stale[:10]}"
