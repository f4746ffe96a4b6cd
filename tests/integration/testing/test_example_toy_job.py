"""The shipped example's tests (tgworkers/testing/example/test_bonus.py), run by this suite.

docs/testing.md shows that file; tests/unit/test_docs_examples.py keeps the two equal.
"""

from tgworkers.testing.example.test_bonus import *  # noqa: F403
