"""A model read from ONNX (lazily: see :class:`Model`). Its ports (named, typed inputs and
outputs) are :mod:`ember.model.port`'s."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ember.common import checksum
from ember.common.log import get_logger
from ember.errors import InvalidModelError, ModelNotFoundError
from ember.model.model_api import ModelApi, built_proto, is_graph
from ember.model.port import Port, find_port

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

    from ember.model.model_edits import Edit
    from ember.model.onnx_header import OnnxHeader

# onnx is imported where a model's graph is parsed, never to read ports: importing it (its
# ml_dtypes extension above all) costs more than a whole warm start. pathlib and ember.types
# (OpenVINO's views of a port) are imported where used too: a warm start needs only the ports.

class Model(ModelApi):
    """An ONNX model, read but not compiled: its source and the edits made to it since.

    Create it with ``Core.read_model`` (or :func:`read_model`), or build one with
    :mod:`ember.opset` as OpenVINO's ``Model(results, parameters, name)``. The contract that
    the model's other modules (reshape, preprocessing, built graphs) build on:

    - ``source`` is the resolved path of the file (a str) or the serialised bytes, and ``edits``
      the tuple of :class:`ember.model.model_edits.Edit` recorded since, in order.
    - ``inputs``, ``outputs`` (ports), ``opset``, ``opsets``, ``friendly_name`` and
      ``metadata`` come from the file's header (``ember.model.onnx_header``, no ``onnx`` import),
      then each edit's ``ports()``; never from a parse while there is no parsed ``proto``.
    - ``proto`` parses the source with onnx the first time it is read, applies each edit in
      order, and keeps the result; later edits are applied to it as they are recorded. A parsed
      model may have been changed in place, so its cache identity is then its serialisation.
    - ``_record(edit)`` checks the edit against the ports (``edit.ports`` raises for one that
      cannot be made), appends it, and updates the ports.
    - Identity in the model cache (``ember.cache.key.model_identity``): a model without edits
      keys exactly as its source does (a file's remembered content digest: the same hit, at the
      same cost, as ``compile_model(path)``); an edited model keys by the digest of its source's
      digest and the canonical JSON of ``[[kind, params], ...]``. Neither parses the model.
    - A model built in memory has its serialised bytes as ``source`` (:meth:`from_proto`).
    """

    def __init__(self, source: str | bytes | None = None, edits: tuple[Edit, ...] = (),
                 name: str | None = None, *, results: Any = None, parameters: Any = None
                 ) -> None:
        built = None
        built_digest = ""  # of the serialised proto as parse and edits built it
        if results is not None:  # OpenVINO's keywords: Model(results=..., parameters=...)
            source, edits = results, parameters or ()
        if source is None:
            raise TypeError("Model needs a source (a path or bytes) or results and parameters")
        if is_graph(source):  # OpenVINO's Model(results, parameters, name): see model_api
            built, self._graph = built_proto(source, edits, name)  # type: ignore[arg-type]
            serialised = built.SerializeToString()
            source, edits, built_digest = serialised, (), checksum.hexdigest(serialised)
        self.source = source
        self.edits: tuple[Edit, ...] = tuple(edits)
        self._proto: onnx.ModelProto | None = None
        self._built_digest = built_digest
        self._ports: tuple[list[Port], list[Port]] | None = None
        if built is not None:
            self._proto = built

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto) -> Model:
        """A model of a ModelProto built or changed in memory (serialised once, here)."""
        serialised = proto.SerializeToString()
        model = cls(serialised)
        model._header  # noqa: B018 -- refuse a proto that is no model now, as read_model does
        model._proto, model._built_digest = proto, checksum.hexdigest(serialised)
        return model

    # -- what the header gives -----------------------------------------------------------------

    @cached_property
    def _header(self) -> OnnxHeader:
        from ember.model.onnx_header import read_header

        if not isinstance(self.source, str):
            return read_header(self.source, "the given bytes")
        from ember.model.protobuf_wire import FileBytes

        try:  # paged: the walk skips the weights, and reads a few pages of a large model
            fd = os.open(self.source, os.O_RDONLY)
        except OSError as exc:
            raise InvalidModelError(self.source, _reason(exc)) from exc
        try:
            return read_header(FileBytes(fd, os.fstat(fd).st_size), self.source)
        except OSError as exc:
            raise InvalidModelError(self.source, _reason(exc)) from exc
        finally:
            os.close(fd)

    def _source_bytes(self) -> bytes:
        if not isinstance(self.source, str):
            return self.source
        try:
            with open(self.source, "rb") as model_file:
                return model_file.read()
        except OSError as exc:
            raise InvalidModelError(self.source, _reason(exc)) from exc

    def _current_ports(self) -> tuple[list[Port], list[Port]]:
        if self._ports is None:
            inputs, outputs = list(self._header.inputs), list(self._header.outputs)
            for edit in self.edits:
                inputs, outputs = edit.ports(inputs, outputs)
            self._ports = (list(inputs), list(outputs))
        return self._ports

    @property
    def inputs(self) -> list[Port]:
        """The model's input ports in order, with the shapes given by any ``reshape``."""
        return self._current_ports()[0]

    @property
    def outputs(self) -> list[Port]:
        """The model's output ports in order, with the shapes the model's edits give them."""
        return self._current_ports()[1]

    @property
    def path(self) -> Path | None:
        """The file the model was read from, if any."""
        if not isinstance(self.source, str):
            return None
        from pathlib import Path  # only for who asks: a warm start does not import pathlib

        return Path(self.source)

    @property
    def friendly_name(self) -> str:
        """The model's name: the ONNX graph's name, else the file's name without its extension,
        else ``"model"``."""
        if self._header.graph_name:
            return self._header.graph_name
        if isinstance(self.source, str):
            return os.path.splitext(os.path.basename(self.source))[0]
        return "model"

    @property
    def opset(self) -> int:
        """The model's opset version for the default ONNX domain."""
        return self._header.opset

    @property
    def opsets(self) -> dict[str, int]:
        """Every opset the model imports: ``{domain: version}`` (``""`` is ONNX's own)."""
        return dict(self._header.opsets)

    @property
    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props``, as a new dict."""
        return dict(self._header.metadata)

    # -- the graph, parsed when needed -----------------------------------------------------------

    @property
    def proto(self) -> onnx.ModelProto:
        """The parsed ModelProto with every edit applied, parsed on first use (onnx is imported
        then). Changing it in place is allowed; the cache then keys the model by its bytes."""
        if self._proto is None:
            import time

            started = time.perf_counter()
            proto = _load(self.source)
            for edit in self.edits:
                edit.apply(proto)
            self._proto, self._built_digest = proto, _digest(proto)
            # What reading the graph cost (onnx's import the first time), for whoever wonders
            # why a start was slow: the logger "ember", at DEBUG.
            get_logger("ember").debug(
                "parsed %s and applied %d edits in %.1f ms", self._name_for_log(),
                len(self.edits), (time.perf_counter() - started) * 1e3)
        return self._proto

    def _name_for_log(self) -> str:
        return self.source if isinstance(self.source, str) else f"{len(self.source)} bytes"

    @property
    def is_parsed(self) -> bool:
        """Whether ``proto`` has been built."""
        return self._proto is not None

    def changed_in_place(self) -> str | None:
        """The digest of the serialised ``proto`` if it was changed in place since it was built
        (by the application, not by recorded edits), else None (the cache keys the model by
        its source and recipe then)."""
        if self._proto is None:
            return None
        digest = _digest(self._proto)
        return digest if digest != self._built_digest else None

    def _record(self, edit: Edit) -> None:
        """Record an edit: check it against the ports, append it, update the ports (and the
        parsed proto, if there is one)."""
        inputs, outputs = edit.ports(self.inputs, self.outputs)
        if self._proto is not None:
            changed = self.changed_in_place() is not None
            edit.apply(self._proto)
            if not changed:  # a proto changed in place stays so, whatever is recorded after
                self._built_digest = _digest(self._proto)
        self.edits = (*self.edits, edit)
        self._ports = (list(inputs), list(outputs))

    def to_bytes(self) -> bytes:
        """The serialized ModelProto (weights included); the source itself when unchanged."""
        if self._proto is None and not self.edits:
            if not isinstance(self.source, str):
                return self.source
            from ember.model.onnx_scan import refers_to_external_data

            data = self._source_bytes()
            if not refers_to_external_data(data):
                return data
        return self.proto.SerializeToString()

    # -- OpenVINO's model API ----------------------------------------------------------------

    def input(self, key: str | int | Port | None = None) -> Port:
        """An input port by name or index; with no key, the only one."""
        return find_port(self.inputs, key, "input")

    def output(self, key: str | int | Port | None = None) -> Port:
        """An output port by name or index; with no key, the only one."""
        return find_port(self.outputs, key, "output")

    def get_friendly_name(self) -> str:
        """The model's name: the ONNX graph's name, else the file's name without its extension,
        else ``"model"``."""
        return self.friendly_name

    def is_dynamic(self) -> bool:
        """Whether any input or output has a dimension that is not a fixed size."""
        return not all(p.is_static for p in (*self.inputs, *self.outputs))

    def reshape(self, shapes: Any) -> None:
        """Give inputs new shapes, in place: one shape for a one-input model, or a mapping from
        input name, index or port to shape (a list, tuple, ``PartialShape`` or ``"[1,3,?,?]"``).

        A static shape makes devices that specialise on shapes (GPU) build inside
        ``compile_model``. :raises InferenceInputError: an unknown input or a wrong rank.
        """
        from ember.model.reshape import Reshape

        self._record(Reshape.of(self.inputs, shapes))

    def __repr__(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return f"<Model {self.friendly_name!r}: ({ins}) -> ({outs})>"


class DeferredModel(Model):
    """A model the core makes for a device that caches its own work (it gets a kernel cache
    handle): nothing is read until the device asks, so that a device that finds all it needs in
    its cache reads nothing (``KernelCache.model_digest`` needs no reading either). Reading the
    ports or ``proto`` raises what :func:`read_model` raises."""


def deferred_model(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """A :class:`DeferredModel` of a path or bytes; a missing file or a directory is reported
    now, anything else when the model is read."""
    if isinstance(source, bytes | bytearray | memoryview):
        return DeferredModel(bytes(source))
    return DeferredModel(_resolved(source))


def read_model(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """A Model of an ONNX file path or serialized bytes, its header read (not its graph), with
    errors that name the cause.

    :raises ModelNotFoundError: no such file. :raises InvalidModelError: not an ONNX model.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        model = Model(bytes(source))
    else:
        model = Model(_resolved(source))
    model._header  # noqa: B018 -- a file that is no model is refused here, not at compile
    return model


def _resolved(source: str | os.PathLike[str]) -> str:
    # os.path, not pathlib: a warm start does not import pathlib
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ModelNotFoundError(path)
    if os.path.isdir(path):
        raise InvalidModelError(path, "it is a directory, not a file")
    return os.path.realpath(path)


def _load(source: str | bytes) -> onnx.ModelProto:
    """The full parse, with onnx (measured: importing onnx costs more than a warm start)."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.checker import ValidationError

    name = source if isinstance(source, str) else "the given bytes"
    try:
        # onnx.load resolves external weight files relative to the model's directory
        proto = onnx.load(source) if isinstance(source, str) else onnx.load_from_string(source)
    except ValidationError as exc:  # an external data file missing, or outside its directory
        raise InvalidModelError(name, f"its external data cannot be used: {_reason(exc)}"
                                ) from exc
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise InvalidModelError(name, _reason(exc)) from exc
    # Protobuf parses many byte strings (even empty ones) as a valid but empty message.
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise InvalidModelError(name, "it has no ONNX graph (not a protobuf ModelProto)")
    if not proto.graph.output:
        raise InvalidModelError(name, "its graph declares no outputs")
    return proto


def _digest(proto: onnx.ModelProto) -> str:
    return checksum.hexdigest(proto.SerializeToString())


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
