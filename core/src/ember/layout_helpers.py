"""``ember.layout_helpers``: OpenVINO's layout functions (``openvino.layout_helpers``).

``get_layout(port)`` is the layout a port was given, by ``set_layout`` or by a
``PrePostProcessor`` (whose built model's inputs have the layout their tensors were declared
with); an ONNX file declares none, so a port read from one has the empty layout, as on OpenVINO.
Ember's ports are immutable values with no link back to their model, so the layouts live here,
keyed by port (name, shape, type, index): two models with identical ports share their layouts.
"""

from __future__ import annotations

from typing import Any

from ember.model.layout import Layout

__all__ = [
    "batch_idx", "channels_idx", "depth_idx", "get_layout", "has_batch", "has_channels",
    "has_depth", "has_height", "has_width", "height_idx", "set_layout", "width_idx",
]

# Bounded: a program that reads models in a loop must not grow this without end.
_MAX_PORTS = 4096
_LAYOUTS: dict[Any, Layout] = {}


def get_layout(port: Any) -> Layout:
    """The layout given to ``port``; the empty layout when none was."""
    return _LAYOUTS.get(_key(port), Layout())


def set_layout(port: Any, layout: Layout | str) -> None:
    """Give ``port`` a layout (what ``get_layout`` then returns)."""
    if len(_LAYOUTS) >= _MAX_PORTS:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    _LAYOUTS[_key(port)] = Layout(layout)


def _key(port: Any) -> Any:
    try:
        hash(port)
    except TypeError as exc:
        raise TypeError(f"a layout belongs to a port, not to {type(port).__name__}") from exc
    return port


def _has(layout: Layout | str, name: str) -> bool:
    return Layout(layout).has_name(name)


def _index(layout: Layout | str, name: str) -> int:
    return Layout(layout).get_index_by_name(name)


def has_batch(layout: Layout | str) -> bool:
    """Whether ``layout`` has a batch dimension, ``N``."""
    return _has(layout, "N")


def batch_idx(layout: Layout | str) -> int:
    """The index of the batch dimension ``N`` in ``layout`` (negative after a ``...``);
    ``RuntimeError`` when it has none."""
    return _index(layout, "N")


def has_channels(layout: Layout | str) -> bool:
    """Whether ``layout`` has a channels dimension, ``C``."""
    return _has(layout, "C")


def channels_idx(layout: Layout | str) -> int:
    """The index of the channels dimension ``C`` in ``layout`` (negative after a ``...``);
    ``RuntimeError`` when it has none."""
    return _index(layout, "C")


def has_depth(layout: Layout | str) -> bool:
    """Whether ``layout`` has a depth dimension, ``D``."""
    return _has(layout, "D")


def depth_idx(layout: Layout | str) -> int:
    """The index of the depth dimension ``D`` in ``layout`` (negative after a ``...``);
    ``RuntimeError`` when it has none."""
    return _index(layout, "D")


def has_height(layout: Layout | str) -> bool:
    """Whether ``layout`` has a height dimension, ``H``."""
    return _has(layout, "H")


def height_idx(layout: Layout | str) -> int:
    """The index of the height dimension ``H`` in ``layout`` (negative after a ``...``);
    ``RuntimeError`` when it has none."""
    return _index(layout, "H")


def has_width(layout: Layout | str) -> bool:
    """Whether ``layout`` has a width dimension, ``W``."""
    return _has(layout, "W")


def width_idx(layout: Layout | str) -> int:
    """The index of the width dimension ``W`` in ``layout`` (negative after a ``...``);
    ``RuntimeError`` when it has none."""
    return _index(layout, "W")
