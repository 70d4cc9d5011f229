"""Run programs written for OpenVINO's Python API on Ember, unchanged.

``python -m ember.compat.openvino SCRIPT [ARGS...]`` (or ``-m MODULE [ARGS...]``) runs a program
as ``python`` would, with ``import openvino``, ``import openvino.runtime`` and their submodules
(``openvino.properties.hint``, ``openvino.runtime.properties``...) resolving to Ember's modules in
that process only, even inside third-party packages and where OpenVINO is installed. Nothing is
installed under the name ``openvino``: a ``sys.meta_path`` finder answers those imports
(:mod:`ember.compat.openvino.finder`; :func:`install` puts it in place from Python). A name Ember
does not implement raises an ImportError or AttributeError that names it and says so. Ember's
own code that drives an installed OpenVINO (the ``OPENVINO`` device) reaches it through
:func:`import_installed`.
"""

from ember.compat.openvino.finder import import_installed, install, installed, uninstall

__all__ = ["import_installed", "install", "installed", "uninstall"]
