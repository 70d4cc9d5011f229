"""``ember.OVAny``: OpenVINO's holder of a value of any type, as runtime info returns them."""

from __future__ import annotations

from typing import Any


class OVAny:
    """A value and its conversions: ``OVAny("0.5 1").aslist(float)``, ``OVAny(3).astype(str)``.

    Runtime info read from an ONNX file is text (``metadata_props`` hold strings); ``astype`` and
    ``aslist`` parse it as OpenVINO does (lists are space separated).
    """

    __slots__ = ("value",)
    value: Any

    def __init__(self, value: Any = None) -> None:
        self.value = value.value if isinstance(value, OVAny) else value

    def get(self) -> Any:
        """The value held, as it was given."""
        return self.value

    def astype(self, target: type) -> Any:
        """The value as ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict``."""
        value = self.value
        if target is str:
            if isinstance(value, list | tuple):
                return " ".join(map(str, value))
            if isinstance(value, bool):
                return "YES" if value else "NO"
            return str(value)
        if target is bool:
            if isinstance(value, str):
                text = value.strip().upper()
                if text in ("YES", "TRUE", "1"):
                    return True
                if text in ("NO", "FALSE", "0"):
                    return False
                raise RuntimeError(f"Cannot convert {value!r} to bool")
            return bool(value)
        if target in (int, float):
            try:
                return target(value)
            except (TypeError, ValueError) as exc:
                raise RuntimeError(f"Cannot convert {value!r} to {target.__name__}") from exc
        if target is list:
            return self.aslist()
        if target is dict:
            if isinstance(value, dict):
                return dict(value)
            raise RuntimeError(f"Cannot convert {type(value).__name__} to dict")
        raise RuntimeError(f"OVAny cannot convert to {getattr(target, '__name__', target)}")

    def aslist(self, dtype: type = str) -> list[Any]:
        """The value as a list: a string is split on spaces (``"1 2 3"``)."""
        value = self.value
        items = value.split() if isinstance(value, str) else list(value)
        try:
            return [OVAny(item).astype(dtype) for item in items]
        except RuntimeError as exc:
            raise RuntimeError(f"Cannot convert {value!r} to a list of {dtype.__name__}") from exc

    def __eq__(self, other: object) -> bool:
        return bool(self.value == (other.value if isinstance(other, OVAny) else other))

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return str(self.astype(str))

    def __repr__(self) -> str:
        return f"<OVAny class holding {self.value!r}>"

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __len__(self) -> int:
        return len(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)
