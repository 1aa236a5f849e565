"""Fixtures for tests of accounts.services: where a test needs a seam (an enqueue not sent, a call
that fails), a fixture here patches the one module that owns it, so tests never reach
into service internals themselves."""
