"""Fixtures shared by every test module."""

import logging

import pytest


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI reconfigures the root logger onto CliRunner's stream; undo it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
