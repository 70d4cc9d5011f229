"""Ember's loggers, made on first use.

Importing :mod:`logging` costs a warm start about as much as everything else Ember does before
its first inference, and a warm start logs nothing. So modules ask :func:`get_logger` for a
stand-in that imports ``logging`` and fetches the real logger (``logging.getLogger(name)``) the
first time one of its methods is used. Configure Ember's loggers with :mod:`logging` as usual.

A debug or info record in a process that has never imported :mod:`logging` is dropped without
importing it: no handler can exist there, and logging's last resort prints only warnings. (A
cold compile logs at info level; importing logging, and the modules it imports, only to drop
those records would be a visible part of it.)
"""

from __future__ import annotations

import sys
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

    def isEnabledFor(self, level: int) -> bool:
        if "logging" in sys.modules:
            return bool(self.__getattr__("isEnabledFor")(level))
        return level >= 30  # WARNING: an unconfigured logger's effective level

    def debug(self, message: object, *args: object, **kwargs: Any) -> None:
        if "logging" in sys.modules:
            self.__getattr__("debug")(message, *args, **kwargs)

    def info(self, message: object, *args: object, **kwargs: Any) -> None:
        if "logging" in sys.modules:
            self.__getattr__("info")(message, *args, **kwargs)


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (``"ember.cache"``, ...), imported when first used."""
    return _Logger(name)  # type: ignore[return-value]  # it behaves as the Logger it fetches
