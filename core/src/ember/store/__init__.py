"""Bytes at rest: the model store (models kept by name), the blob container, signing, atomic
and confined files.

This package is also the model store's public API (:mod:`ember.store.models`), handed on when
first used so that a warm start, which reads ``ember.store.paths`` and ``ember.store.atomic``,
never imports pathlib or the model reader::

    ember.store.find_model("ppocr-cls")      # the stored model's path, or StoredModelNotFoundError
    ember.store.get_dir_origin()             # which rule chose the store directory

May import ``ember.model``, ``ember.common`` and the leaf faces; never ``ember.cache``,
``ember.contract`` or ``ember.runtime``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.store.models import (
        COMPILED_DIR as COMPILED_DIR,
    )
    from ember.store.models import (
        LOCATIONS_FILE as LOCATIONS_FILE,
    )
    from ember.store.models import (
        RESERVED_NAMES as RESERVED_NAMES,
    )
    from ember.store.models import (
        ModelNameError as ModelNameError,
    )
    from ember.store.models import (
        StoredModelNotFoundError as StoredModelNotFoundError,
    )
    from ember.store.models import (
        StoreFileError as StoreFileError,
    )
    from ember.store.models import (
        cached_model_path as cached_model_path,
    )
    from ember.store.models import (
        clear_model_cache as clear_model_cache,
    )
    from ember.store.models import (
        compiled_cache_dir as compiled_cache_dir,
    )
    from ember.store.models import (
        find_model as find_model,
    )
    from ember.store.models import (
        find_stored_model as find_stored_model,
    )
    from ember.store.models import (
        get_dir as get_dir,
    )
    from ember.store.models import (
        get_dir_origin as get_dir_origin,
    )
    from ember.store.models import (
        list_cached_models as list_cached_models,
    )
    from ember.store.models import (
        list_stored_models as list_stored_models,
    )
    from ember.store.models import (
        model_locations as model_locations,
    )
    from ember.store.models import (
        resolve_model_name as resolve_model_name,
    )
    from ember.store.models import (
        save_model as save_model,
    )
    from ember.store.models import (
        set_dir as set_dir,
    )
    from ember.store.models import (
        set_model_cache as set_model_cache,
    )
    from ember.store.models import (
        stored_model_path as stored_model_path,
    )
    from ember.store.models import (
        validate_model_name as validate_model_name,
    )

__all__ = [
    "COMPILED_DIR",
    "LOCATIONS_FILE",
    "RESERVED_NAMES",
    "ModelNameError",
    "StoreFileError",
    "StoredModelNotFoundError",
    "cached_model_path",
    "clear_model_cache",
    "compiled_cache_dir",
    "find_model",
    "find_stored_model",
    "get_dir",
    "get_dir_origin",
    "list_cached_models",
    "list_stored_models",
    "model_locations",
    "resolve_model_name",
    "save_model",
    "set_dir",
    "set_model_cache",
    "stored_model_path",
    "validate_model_name",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'ember.store' has no attribute {name!r}")
    return getattr(import_module("ember.store.models"), name)
