"""A complete job module and its tests, shipped so a new job author can start from them.

- `bonus.py`: a job type (`bonus.grant`) and a follow-up (`bonus.followup`), their
  payloads, and the processor that runs them (`BONUS`, `APP`).
- `test_bonus.py`: its tests with `tgworkers.testing`, inline and on the real engine.
- `producer.py`: enqueueing from another Python service with `tgworkers.Producer`.
- `pytest.ini`: the test settings a project needs (async tests).

docs/testing.md and docs/producers.md show these files; a test keeps the docs' code
blocks equal to them (tests/unit/test_docs_examples.py), the repository's suite runs
them, and a test copies them into a new project outside the repository and runs
pytest there (tests/integration/testing/test_example_project.py).
"""
