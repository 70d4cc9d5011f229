"""``OpenVINOModule``: a module named as one of OpenVINO's that hands out an Ember module's names.

Each ``openvino...`` module in a program run by the runner is one of these: attribute reads go to
the Ember module behind it (so ``openvino.Core is ember.Core``), OpenVINO's submodules are
imported when first read as attributes (``openvino.properties.hint.PerformanceMode`` works after
``import openvino``, as it does with OpenVINO), and a name Ember lacks raises an AttributeError
that names it and says Ember does not implement it. The Ember modules themselves are never
renamed or changed.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from ember.compat.openvino.names import canonical, ember_module, not_implemented
from ember.errors import OpenVINOModuleError

_MISSING = object()


class OpenVINOModule(types.ModuleType):
    """OpenVINO's module ``name``, reading its attributes from the Ember module ``target``."""

    __ember_module__: types.ModuleType

    def __init__(self, name: str, target: types.ModuleType) -> None:
        super().__init__(name, target.__doc__)
        self.__ember_module__ = target
        self.__path__: list[str] = []  # a package: OpenVINO's submodules can be imported

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # __file__, __all__...: what the Ember module has
            if name == "__all__":
                return self._all()
            try:
                return getattr(self.__ember_module__, name)
            except AttributeError:
                raise AttributeError(name) from None
        target = self.__ember_module__
        value = getattr(target, name, _MISSING)
        if value is _MISSING or isinstance(value, types.ModuleType):
            # OpenVINO's submodules are modules of this namespace, not Ember's own objects
            full = f"{self.__name__}.{name}"
            if ember_module(full) is not None:
                try:
                    value = importlib.import_module(full)
                except OpenVINOModuleError:  # not a module Ember has: not an attribute either
                    value = _MISSING
        if value is _MISSING:
            raise AttributeError(not_implemented(f"{canonical(self.__name__)}.{name}"),
                                 name=name, obj=self)
        setattr(self, name, value)  # the next read is a plain lookup
        return value

    def _all(self) -> list[str]:
        """``from openvino import *``: the Ember module's public names that resolve here."""
        target = self.__ember_module__
        names = getattr(target, "__all__", None)
        if names is None:
            # neither modules nor ``from __future__ import annotations``' feature object
            names = [n for n in dir(target) if not n.startswith("_")
                     and not isinstance(getattr(target, n, None), types.ModuleType)
                     and type(getattr(target, n, None)).__module__ != "__future__"]
        return list(names)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *dir(self.__ember_module__)})

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} (Ember's {self.__ember_module__.__name__})>"
