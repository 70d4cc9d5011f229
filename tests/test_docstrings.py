"""Every public name of ``ember`` and ``ember.plugin`` says what it is: the names in their
``__all__``, the public names of the submodules listed there (``ember.opset``,
``ember.preprocess``, ...), and the public methods and properties of every class among them,
inherited ones included (OpenVINO-shaped accessors such as ``Output.get_shape`` too).

The API reference pages render these docstrings (tests/test_docs.py builds them), so a name
without one is a blank entry there and a bare signature in ``help()``.
"""

import inspect
import types
from collections.abc import Iterator
from typing import Any

import ember
import ember.plugin

#: Values that are data, not API with behaviour of its own (a docstring cannot be attached).
_DATA = (int, float, str, bytes, tuple, frozenset, dict, list)


def _ours(value: Any) -> bool:
    return (getattr(value, "__module__", None) or "").split(".")[0] == "ember"


def _doc_of(raw: Any) -> str | None:
    """The docstring of a class attribute as found in the class's ``__dict__``."""
    if isinstance(raw, property):
        return raw.__doc__ or (raw.fget.__doc__ if raw.fget else None)
    if isinstance(raw, staticmethod | classmethod):
        return raw.__func__.__doc__
    return getattr(raw, "__doc__", None)


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """(qualified name, attribute) for each public method and property of ``cls``, from every
    Ember class in its MRO (a base's public method is the subclass's API too)."""
    seen = set()
    for klass in cls.__mro__:
        if klass is object or not _ours(klass):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            function = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
            if isinstance(raw, property) or inspect.isfunction(function):
                yield f"{cls.__module__}.{cls.__qualname__}.{name}", raw


def _public(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        yield f"{module.__name__}.{name}", getattr(module, name)


def _undocumented() -> list[str]:
    missing: list[str] = []
    checked_classes: set[type] = set()

    def check(qualified: str, value: Any) -> None:
        if isinstance(value, (types.ModuleType, *_DATA)) or not _ours(value):
            return
        doc = (value.__doc__ or "").strip()
        # NamedTuple and dataclass write "Name(field, ...)" for a class without a docstring
        if not doc or doc.startswith(f"{getattr(value, '__name__', '')}("):
            missing.append(qualified)
        if inspect.isclass(value) and value not in checked_classes:
            checked_classes.add(value)
            missing.extend(name for name, raw in _members(value)
                           if not (_doc_of(raw) or "").strip())

    for package in (ember, ember.plugin):
        for qualified, value in _public(package):
            if isinstance(value, types.ModuleType):
                if not (value.__doc__ or "").strip():
                    missing.append(qualified)
                for inner_name, inner in _public(value):
                    if not isinstance(inner, types.ModuleType):
                        check(inner_name, inner)
            else:
                check(qualified, value)
    return sorted(set(missing))


def test_every_public_name_and_member_has_a_docstring():
    missing = _undocumented()
    assert not missing, f"{len(missing)} public names have no docstring: {missing}"


def test_the_walk_reaches_methods_properties_and_submodules():
    """The check above looks where the gaps were: a method and a property of a class in
    ``__all__``, a base class's method, and a function of a listed submodule."""
    output = f"{ember.Output.__module__}.Output"  # wherever the class is defined
    members = dict(_members(ember.Output))
    assert isinstance(members[f"{output}.shape"], property)
    assert f"{output}.get_target_inputs" in members
    model = f"{ember.Model.__module__}.Model"
    assert f"{model}.get_ops" in dict(_members(ember.Model))  # from a base class
    assert "ember.opset13.add" in dict(_public(ember.opset13))
    assert "ember.plugin.CacheKey" in dict(_public(ember.plugin))
