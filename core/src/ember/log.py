"""Ember's loggers, made on first use.

Importing :mod:`logging` costs a warm start about as much as everything else Ember does before
its first inference, and a warm start logs nothing. So modules ask :func:`get_logger` for a
stand-in that imports ``logging`` and fetches the real logger (``logging.getLogger(name)``) the
first time one of its methods is used. Configure Ember's loggers with :mod:`logging` as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging


class _Logger:
    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self.name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (``"ember.cache"``, ...), imported when first used."""
    return _Logger(name)  # type: ignore[return-value]  # it behaves as the Logger it fetches
