"""What ``pytest --ember-device NAME`` collects: the conformance suite once per device named.

Not a ``test_*.py`` file, so pytest never collects it unless Ember's pytest plugin asks it to.
"""

from __future__ import annotations

import pytest

from ember.testing.pytest_plugin import devices
from ember.testing.suite import DeviceConformance


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device_name" in metafunc.fixturenames:
        metafunc.parametrize("device_name", devices(metafunc.config))


class TestDevice(DeviceConformance):
    """Ember's conformance suite for each ``--ember-device``."""
