"""The changes an application makes to a read model, recorded rather than applied at once.

A :class:`~ember.model.model.Model` keeps its source (a file or bytes) and the list of edits made to
it. An edit knows three things: its canonical parameters (they enter the model-cache key, so a
warm start of an edited model needs no parse), how it changes the ports (computed without
``onnx``), and how it changes the parsed graph (applied only when something needs the graph:
a cold compile, saving, listing the operators).

To add a kind of edit, subclass :class:`Edit`, give it a stable ``kind`` and implement the three
methods; record an instance with ``model._record(edit)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from ember.model.port import Port


class Edit:
    """One recorded change to a model: the base of every kind of edit."""

    #: A stable name of this kind of edit: part of the cache key, never renamed.
    kind: str = ""

    def params(self) -> Any:
        """The edit's parameters as canonical JSON values (dicts, lists, strings, numbers,
        None), equal for equal edits: the cache key holds ``[kind, params]``."""
        raise NotImplementedError

    def apply(self, proto: onnx.ModelProto) -> None:
        """Make the change in the parsed model, in place (imports onnx itself if it needs it)."""
        raise NotImplementedError

    def ports(self, inputs: list[Port], outputs: list[Port]) -> tuple[list[Port], list[Port]]:
        """The model's ports after the edit, from those before it, without onnx.

        Raise an Ember error (``InferenceInputError`` for a port that does not fit) here: an
        edit that cannot be made is refused when it is recorded, not when the graph is built.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Edit {self.kind} {self.params()!r}>"


def recipe(edits: tuple[Edit, ...] | list[Edit]) -> list[list[Any]]:
    """The canonical form of a list of edits: ``[[kind, params], ...]``, in order."""
    return [[edit.kind, edit.params()] for edit in edits]
