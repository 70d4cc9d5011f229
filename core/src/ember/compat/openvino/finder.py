"""The ``sys.meta_path`` finder that answers every ``openvino`` import with Ember's modules.

Placed first on ``sys.meta_path``, it answers ``openvino`` and everything under it before any
other finder can look, so an installed OpenVINO is never imported while it is in place; a name
Ember does not implement raises :class:`~ember.errors.OpenVINOModuleError` (a
``ModuleNotFoundError``) saying so. Nothing is installed under the
name ``openvino``: the modules are :class:`~ember.compat.openvino.facade.OpenVINOModule` objects
made here.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from ember.compat.openvino.facade import OpenVINOModule
from ember.compat.openvino.names import canonical, ember_module, is_openvino, not_implemented
from ember.errors import OpenVINOModuleError

if TYPE_CHECKING:
    from importlib.abc import Loader


class OpenVINOFinder:
    """Finds and loads ``openvino...`` modules as views of Ember's: importlib's finder and loader
    protocols (``importlib.abc`` itself is not a base: importing it, and what it imports, would
    be paid by every start of a program run this way)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not is_openvino(fullname):
            return None
        module_name = ember_module(fullname)
        if module_name is None:
            raise OpenVINOModuleError(not_implemented(canonical(fullname)))
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if module_name != missing and not module_name.startswith(missing + "."):
                raise  # Ember's module is there but could not import something it needs
            raise OpenVINOModuleError(not_implemented(canonical(fullname))) from None
        spec = importlib.machinery.ModuleSpec(fullname, cast("Loader", self), is_package=True)
        spec.loader_state = module_name
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return OpenVINOModule(spec.name, sys.modules[spec.loader_state])

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module reads everything from Ember's."""

    def __repr__(self) -> str:
        return "<ember.compat.openvino finder>"


_FINDER = OpenVINOFinder()


def install() -> None:
    """Make ``import openvino`` (and its submodules) give Ember's modules in this process.

    OpenVINO modules imported before are dropped from ``sys.modules`` so that later imports see
    Ember's; objects already taken from them keep being OpenVINO's.
    """
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in [n for n in sys.modules if is_openvino(n)]:
        if not isinstance(sys.modules[name], OpenVINOModule):
            del sys.modules[name]


def uninstall() -> None:
    """Undo :func:`install`: ``openvino`` imports find whatever is installed again."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if is_openvino(n)]:
        if isinstance(sys.modules[name], OpenVINOModule):
            del sys.modules[name]


def installed() -> bool:
    """Whether ``openvino`` imports give Ember's modules now."""
    return _FINDER in sys.meta_path


#: The installed OpenVINO's modules, by name, once :func:`import_installed` has imported them.
_INSTALLED: dict[str, types.ModuleType] = {}


def import_installed() -> types.ModuleType:
    """The installed ``openvino`` package itself, for Ember's own code that drives OpenVINO (the
    ``OPENVINO`` device) while the program's ``openvino`` is Ember's.

    Without the finder in place this is ``import openvino``. With it, the installed package is
    imported once with the finder and Ember's modules set aside (its modules import each other by
    their absolute names while it loads), and they are put back afterwards; the installed
    package's modules are kept here, not in ``sys.modules``. Another thread importing
    ``openvino`` during that first import may see the installed package.

    :raises ModuleNotFoundError: OpenVINO is not installed.
    """
    if not installed():
        return importlib.import_module("openvino")
    if not _INSTALLED:
        ours = {name: module for name, module in sys.modules.items() if is_openvino(name)}
        for name in ours:
            del sys.modules[name]
        sys.meta_path.remove(_FINDER)
        try:
            importlib.import_module("openvino")
            _INSTALLED.update((name, module) for name, module in sys.modules.items()
                              if is_openvino(name))
        finally:
            for name in [n for n in sys.modules if is_openvino(n)]:
                del sys.modules[name]
            sys.modules.update(ours)
            sys.meta_path.insert(0, _FINDER)
    return _INSTALLED["openvino"]
