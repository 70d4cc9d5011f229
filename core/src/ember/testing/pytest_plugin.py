"""Ember's pytest plugin (entry point ``pytest11``): ``pytest --ember-device NAME`` runs the
conformance suite against an installed device.

Loaded by every pytest run in an environment where ``ember`` is installed, so it stays inert
unless asked: it adds the option, collects nothing of its own unless ``--ember-device`` is given,
and imports nothing heavy (the suite is imported only by the file it collects). Without
``--ember-device`` the only other effect is a summary section listing what the suite recorded
(zoo models absent from this machine and how to get them, models a device declined, ONNX
node-test pass rates), when a suite ran at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ember.testing.notes import NOTES

# The suite's checks are plain asserts with messages: let pytest rewrite them for the diffs.
pytest.register_assert_rewrite("ember.testing.suite", "ember.testing.cells")

#: The file collected for ``--ember-device``: one class, parametrized by the devices named.
SUITE_FILE = Path(__file__).with_name("device_suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ember", "Ember device conformance")
    group.addoption(
        "--ember-device", action="append", default=[], metavar="NAME", dest="ember_devices",
        help="run Ember's conformance suite against this installed device (repeatable), "
             "for example --ember-device TEMPLATE",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[NOTES] = {}
    if not config.getoption("ember_devices"):
        return
    # The suite replaces the default collection (testpaths, the current directory); paths given
    # on the command line are collected as well.
    suite = str(SUITE_FILE)
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args = [*config.args, suite]
    else:
        config.args = [suite]


def devices(config: pytest.Config) -> list[str]:
    """The devices named with ``--ember-device``, in order, without repeats, each resolved as
    ``Core`` resolves it (``GPU`` is ``GPU.0``; an unknown name stays as given, to fail)."""
    from ember.testing.contract import resolve_device

    return list(dict.fromkeys(resolve_device(name) for name in config.getoption("ember_devices")))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for section, lines in config.stash.get(NOTES, {}).items():
        terminalreporter.write_sep("-", section)
        for line in lines:
            terminalreporter.write_line(line)
