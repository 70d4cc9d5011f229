"""Ember's version: the one place it is written (core/pyproject.toml reads it from here).

A literal rather than importlib.metadata, whose lookup costs a warm start tens of milliseconds.
"""

__version__ = "0.1.0"
