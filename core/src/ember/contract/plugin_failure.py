"""A plugin that could not be used, and why: what ``Core.plugin_failures`` lists.

Only a failure makes one, so a start whose plugins load never imports this module: creating a
NamedTuple class costs a warm start more than the rest of a small module.
"""

from __future__ import annotations

from typing import NamedTuple


class PluginFailure(NamedTuple):
    """A plugin that could not be used, and why; shown by ``Core.plugin_failures``.

    ``stage`` is one of ``"compatibility"`` (its ember requirement excludes this Ember),
    ``"conflict"`` (another distribution declares the same device kind), ``"import"``,
    ``"register"`` (a hook that breaks the contract) and ``"list_devices"``. ``details`` holds the
    traceback, shown by ``ember --debug``.
    """

    name: str
    distribution: str | None
    stage: str
    error: str
    details: str = ""

    def __repr__(self) -> str:  # without the traceback in details
        return (f"PluginFailure(name={self.name!r}, distribution={self.distribution!r}, "
                f"stage={self.stage!r}, error={self.error!r})")

    def __str__(self) -> str:
        where = f" ({self.distribution})" if self.distribution else ""
        return f"plugin {self.name!r}{where} failed at {self.stage}: {self.error}"
