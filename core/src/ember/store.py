"""The model store: models kept locally by name (tfimm's cache-directory rules). See issue 6."""

from __future__ import annotations

import os
from typing import Any


def resolve_model_name(source: Any) -> Any:
    """Turn a stored model's name into its path; return anything else unchanged.

    A string that is an existing path, or that looks like one, is left alone.
    """
    if isinstance(source, str) and not os.path.exists(source):
        return source  # name resolution lands with the model store
    return source
