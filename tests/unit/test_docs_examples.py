"""Every code block of docs/testing.md and docs/producers.md is a file the suite runs.

The files are tgworkers/testing/example/ (shipped in the package): the job module,
its tests (run by tests/integration/testing/test_example_toy_job.py and, copied into
a new project, by test_example_project.py), the producer (run by
tests/integration/producer/test_producer.py) and the project's pytest.ini.
"""

from __future__ import annotations

import pytest
from tests.support.docs_examples import PAGES, blocks, expected

FIX = "run `.venv/bin/python -m tests.support.docs_examples` to copy the files into the docs"


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_names_the_file_it_shows(page):
    bare = [line for line, marker, _ in blocks(page) if marker is None]
    assert not bare, (
        f"{page}: the blocks at lines {bare} are not taken from a file that runs; put the code "
        "in tgworkers/testing/example/ and mark the block with <!-- example: PATH[::names] -->"
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_equals_its_file(page):
    stale = [line for line, marker, text in blocks(page) if marker and text != expected(marker)]
    assert not stale, f"{page}: the blocks at lines {stale} differ from their files; {FIX}"
