"""``Version``: what ``Core.get_versions`` maps each device to, shaped like OpenVINO's; and
``get_version()``, Ember's own."""

from __future__ import annotations


class Version(str):
    """The text ``"ember-cpu 0.1.0"`` (what Ember returned before), with OpenVINO's fields:
    ``description`` (the plugin's distribution) and ``build_number`` (its version), and
    ``major``/``minor``/``patch`` parsed from it (0 where it has none)."""

    description: str
    build_number: str

    def __new__(cls, description: str, build_number: str) -> Version:
        text = f"{description} {build_number}".strip()
        version = super().__new__(cls, text)
        version.description = description
        version.build_number = build_number
        return version

    def _part(self, index: int) -> int:
        parts = self.build_number.split(".")
        try:
            return int(parts[index])
        except (IndexError, ValueError):
            return 0

    @property
    def major(self) -> int:
        """The first number of ``build_number`` (``0`` when it has none)."""
        return self._part(0)

    @property
    def minor(self) -> int:
        """The second number of ``build_number`` (``0`` when it has none)."""
        return self._part(1)

    @property
    def patch(self) -> int:
        """The third number of ``build_number`` (``0`` when it has none)."""
        return self._part(2)


def get_version() -> str:
    """Ember's version as a string, as OpenVINO's ``get_version()`` gives OpenVINO's."""
    from ember._version import __version__

    return __version__
