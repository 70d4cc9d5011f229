"""``ember.save_model`` and ``ember.serialize``: OpenVINO's model writers, next to the store's.

``ember.save_model`` has two forms, told apart by the type of the first argument:

- ``save_model(model, path, compress_to_fp16=True)`` (OpenVINO's): a ``Model`` (or an
  ``onnx.ModelProto``) first writes it to ``path`` as an ONNX file, edits and runtime info
  included (Ember writes ONNX whatever the suffix: a ``.xml`` path gets ONNX bytes, which
  ``read_model`` reads back);
- ``save_model(name, model)`` (the model store's, :func:`ember.store.models.save_model`): a
  name first puts the model into the local store.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx


#: Weights smaller than this stay in float32 (a scale or a bias gains nothing from halving).
_MIN_COMPRESSED = 1024


def save_model(model: Any, output_model: Any = None, compress_to_fp16: bool = True) -> Any:
    """OpenVINO's ``save_model(model, path, compress_to_fp16=True)`` for a Model first; the
    store's ``save_model(name, model)`` for a name first (see the module's text).

    With ``compress_to_fp16`` (OpenVINO's default) float32 weights of 1024 values or more are
    stored as float16 and cast back to float32 by the graph, as OpenVINO's compressed IR does:
    about half the file, results within float16's precision.
    """
    if isinstance(model, str):
        from ember.store.models import save_model as store_save

        return store_save(model, output_model)
    if output_model is None:
        raise TypeError("save_model(model, output_model) needs the path to write")
    proto = _proto(model)
    if compress_to_fp16:
        proto = _compressed(proto)
    _write(proto, output_model)
    return None


def serialize(model: Any, xml_path: str | os.PathLike[str], bin_path: Any = None,
              version: Any = None) -> None:
    """OpenVINO's ``serialize``: ``model`` written to ``xml_path`` as ONNX, uncompressed
    (weights embedded: ``bin_path`` is not written)."""
    _write(_proto(model), xml_path)


def _proto(model: Any) -> onnx.ModelProto:
    import onnx

    from ember.model.model import Model

    if isinstance(model, Model):
        return model.proto
    if isinstance(model, onnx.ModelProto):
        return model
    raise TypeError(f"save_model writes a Model or ModelProto, not {type(model).__name__}")


def _write(proto: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    from pathlib import Path

    from ember.store.atomic import write_atomically

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, proto.SerializeToString())


def _compressed(proto: onnx.ModelProto) -> onnx.ModelProto:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    graph = copy.graph
    casts = []
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT or _count(tensor) < _MIN_COMPRESSED:
            continue
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            continue
        half = numpy_helper.to_array(tensor).astype(np.float16)
        name = tensor.name
        stored = f"{name}__fp16"
        graph.initializer[index].CopyFrom(numpy_helper.from_array(half, stored))
        casts.append(helper.make_node("Cast", [stored], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}/decompress"))
    for position, cast in enumerate(casts):  # insert moves pointers; extend would copy
        graph.node.insert(position, cast)
    return copy


def _count(tensor: onnx.TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        count *= int(dim)
    return count

