"""The base of Ember's small value records (a blob's header, a cache key, a plugin's entry).

A record names its fields, in order, in ``_fields`` (its ``__slots__`` too) and sets them in a
typed ``__init__``; this base gives it equality, a hash, a ``repr``, and NamedTuple's
``_asdict`` and ``_replace``.

Why not ``typing.NamedTuple``: creating a NamedTuple class compiles every field's annotation and
generates its constructor, about 0.3 ms at import for a class of a dozen fields, and the records
here are all imported by every warm start. A record is not a tuple: it is neither indexed nor
unpacked, and it does not equal a tuple of the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # a TypeVar bound by name compiles the name at import: for checkers only
    from typing import TypeVar

    R = TypeVar("R", bound="Record")


class Record:
    """Equality, hash, ``repr`` and ``_asdict`` from the fields a subclass names in ``_fields``."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _asdict(self) -> dict[str, Any]:
        """The fields and their values, in order (as NamedTuple's ``_asdict``)."""
        return {name: getattr(self, name) for name in self._fields}

    def _replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed (as NamedTuple's ``_replace``)."""
        return type(self)(**{**self._asdict(), **changes})

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:  # as a tuple's: a field that cannot be hashed makes it fail
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"
