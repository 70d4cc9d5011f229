"""Lines the conformance suite adds to the end of a pytest run (printed by Ember's pytest plugin):
the models each device declined, the ONNX node tests' pass rates."""

from __future__ import annotations

import pytest

NOTES: pytest.StashKey[dict[str, list[str]]] = pytest.StashKey()


def note(config: pytest.Config, section: str, line: str) -> None:
    """Add a line to a section of the summary (once per distinct line)."""
    lines = config.stash.setdefault(NOTES, {}).setdefault(section, [])
    if line not in lines:
        lines.append(line)
