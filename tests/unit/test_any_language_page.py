"""docs/enqueue-any-language.md is what the vectors and the engine say today."""

from __future__ import annotations

from tests.support.any_language_page import PAGE, render


def test_the_any_language_page_is_up_to_date():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/enqueue-any-language.md is out of date: run "
        "`.venv/bin/python -m tests.support.any_language_page`"
    )
