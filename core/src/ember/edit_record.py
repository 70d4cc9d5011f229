"""Recording an edit on a model: the one place edits reach a Model.

A lazy model keeps the edit (``model._record``) and applies it when its graph is first needed, so
an edited model whose compiled form is in the cache never builds the edited graph. A model that
records no edits (it holds its parsed graph) gets the edit applied at once.
"""

from __future__ import annotations

from typing import Any


def record(model: Any, edit: Any) -> None:
    """Add ``edit`` (``kind``, ``params()``, ``apply(proto)``, ``ports(inputs, outputs)``) to
    ``model``; its ports change now, its graph now or when first read."""
    hook = getattr(model, "_record", None)
    if hook is not None:
        hook(edit)
        return
    edit.apply(model.proto)
    inputs, outputs = edit.ports(list(model.inputs), list(model.outputs))
    model.inputs, model.outputs = list(inputs), list(outputs)
