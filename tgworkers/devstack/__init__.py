"""The local development stack: stub peers (the same fakes the tests use) and friends."""
