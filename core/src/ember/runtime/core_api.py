"""The part of :class:`ember.Core` that the modules driving a Core for it use (AUTO's compile,
``query_model``), as a Protocol, and the kinds of model source a Core accepts.

``ember.runtime.core`` imports those modules when asked; they import this module instead of
``ember.runtime.core``, so that no import runs in a circle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    from ember.cache.local import ModelCache
    from ember.contract.device import DeviceDescription
    from ember.model.model import Model
    from ember.runtime.compiled_model import CompiledModel
    from ember.runtime.versions import Version
    from ember.store.signing import Signer

#: What ``read_model`` and ``compile_model`` take: a Model, a path, or the model's bytes.
ModelSource = Union["Model", str, os.PathLike[str], bytes]


class CoreAPI(Protocol):
    """The methods of :class:`ember.Core` that AUTO and ``query_model`` call (the underscored
    ones are internal to Ember: AUTO's memory keeps its records in the Core's model cache)."""

    @property
    def available_devices(self) -> list[str]: ...

    def get_versions(self, device_name: str) -> dict[str, Version]: ...

    def get_property(self, device_name: str, key: str | None = None) -> Any: ...

    def read_model(self, model: str | os.PathLike[str] | bytes) -> Model: ...

    def compile_model(self, model: ModelSource, device_name: str | None = None,
                      config: Mapping[str, Any] | None = None) -> CompiledModel: ...

    def _device(self, device_name: str) -> DeviceDescription: ...

    def _model_cache(self, cache_dir: str) -> ModelCache: ...

    def _signer(self, device: DeviceDescription, config: Mapping[str, Any] | None
                ) -> Signer | None: ...
