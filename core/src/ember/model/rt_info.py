"""Runtime info of a model: OpenVINO's ``get_rt_info``/``set_rt_info``/``has_rt_info`` over the
ONNX model's ``metadata_props``.

OpenVINO shows an ONNX file's metadata under ``["framework", key]``, key as written; wrapper
libraries (and OpenVINO's own IR) use paths such as ``["model_info", "labels"]``, which in an
ONNX file are the key ``"model_info labels"`` (the path joined by spaces). Ember answers both:
``["framework", "model_info labels"]`` and ``["model_info", "labels"]`` read the same entry.
``set_rt_info`` is a recorded edit, so it changes the key of a cached compile, is written by
``save_model`` and needs no parsed graph until one is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ember.errors import RuntimeInfoError
from ember.model.model_edits import Edit
from ember.model.ovany import OVAny

if TYPE_CHECKING:
    import onnx

_ABSENT = "Cannot get runtime attribute. Path to runtime attribute is incorrect."
_FRAMEWORK = "framework"
_MAX_KEY = 4096


class RtInfoEdit(Edit):
    """Set one metadata property (``kind`` ``"rt_info"``)."""

    kind = "rt_info"

    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value

    def params(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}

    def ports(self, inputs: list[Any], outputs: list[Any]) -> tuple[list[Any], list[Any]]:
        return inputs, outputs

    def apply(self, proto: onnx.ModelProto) -> None:
        for entry in proto.metadata_props:
            if entry.key == self.key:
                entry.value = self.value
                return
        entry = proto.metadata_props.add()
        entry.key, entry.value = self.key, self.value


def metadata(model: Any) -> dict[str, str]:
    """The model's metadata properties with its recorded rt_info edits applied."""
    props: dict[str, str] = model.metadata  # the file's header: no parse
    for edit in model.edits:
        if getattr(edit, "kind", None) == RtInfoEdit.kind:
            props[edit.key] = edit.value
    return props


def _path(path: str | Sequence[str] | None) -> list[str]:
    if path is None:
        return []
    if isinstance(path, str):
        return [path]
    return [str(p) for p in path]


def _tree(props: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {_FRAMEWORK: {k: OVAny(v) for k, v in props.items()}}
    for key, value in props.items():
        parts = key.split()
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if parts and not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = OVAny(value)
    return tree


def get_rt_info(model: Any, path: str | Sequence[str] | None = None) -> Any:
    """The value at ``path`` (an ``OVAny``), a subtree (an ``OVAny`` of a dict), or with no
    path every entry. :raises RuntimeInfoError: (a RuntimeError) for a path that leads nowhere."""
    node: Any = _tree(metadata(model))
    parts = _path(path)
    if not parts:
        return node
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise RuntimeInfoError(_ABSENT)
        node = node[part]
    return node if isinstance(node, OVAny) else OVAny(node)


def has_rt_info(model: Any, path: str | Sequence[str]) -> bool:
    try:
        get_rt_info(model, path)
    except RuntimeInfoError:
        return False
    return True


def set_rt_info(model: Any, value: Any, path: str | Sequence[str]) -> None:
    """Set the entry at ``path`` to ``value`` (kept as text: lists joined by spaces)."""
    parts = _path(path)
    if not parts:
        raise RuntimeInfoError("set_rt_info needs a path")
    key = parts[1] if parts[0] == _FRAMEWORK and len(parts) == 2 else " ".join(parts)
    if len(key) > _MAX_KEY or any(" " in p or not p for p in parts[:-1] if p != _FRAMEWORK):
        raise RuntimeInfoError(f"runtime-info path {parts!r} cannot be an ONNX metadata key")
    model._record(RtInfoEdit(key, OVAny(value).astype(str)))
