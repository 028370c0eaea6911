"""The program's language: English by default, French with ``--lang fr`` or ``LANG=fr_*``.

Sentences go through ``_()`` (the standard library's `gettext`), so a translation is one
catalog — ``nnrun/locale/LANG/LC_MESSAGES/nnrun.po`` — and never an ``if lang == …``.
The compiled ``.mo`` beside each ``.po`` is what is read; after editing a ``.po``:

    pybabel compile -d nnrun/locale -D nnrun        # Babel, in the test extra

Numbers follow the language: ``235,146`` and ``0.001`` in English, ``235 146`` and
``0,001`` in French (`number_text`).
"""
from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "nnrun"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "fr")

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def language_from_environment(environ=os.environ) -> str:
    """``fr`` when the first of LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set starts with fr."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def set_language(language: str | None = None) -> str:
    """Use ``language`` (en, fr), or the environment's when None; return the one in use."""
    global _translation, _language
    _language = language or language_from_environment()
    if _language == "en":
        _translation = gettext.NullTranslations()
    else:
        _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[_language], fallback=True)
    return _language


def language() -> str:
    return _language


def _(message: str) -> str:
    """``message`` in the language in use (itself when the catalog has no translation)."""
    return _translation.gettext(message)


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is not translated yet (a word kept as data)."""
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    return _translation.ngettext(singular, plural, count)


def percent_text(fraction: float, decimals: int = 2) -> str:
    """``0.9734`` → ``97.34%`` (en) or ``97,34 %`` (fr)."""
    text = f"{fraction:.{decimals}%}"
    return text.replace(".", ",").replace("%", " %") if _language == "fr" else text


def decimal_text(text: str) -> str:
    """A number already formatted (``0.7091``, ``1.3e-05``) with the language's decimal mark."""
    return text.replace(".", ",") if _language == "fr" else text


def number_text(value: float, decimals: int | None = None) -> str:
    """A number as the language writes it: thousands grouped, the decimal mark.

    ``number_text(235146)`` → ``235,146`` (en) or ``235 146`` (fr);
    ``number_text(0.001)`` → ``0.001`` or ``0,001``."""
    if decimals is None and float(value).is_integer():
        text = f"{int(value):,}"
    elif decimals is None:
        text = f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.6g}"
    else:
        text = f"{value:,.{decimals}f}"
    if _language == "fr":
        text = text.replace(",", " ").replace(".", ",")
    return text
