"""One cell of the conformance matrix: a device, a model of the zoo, and a cache mode.

Modes: ``off`` (no cache; outputs against the model's oracle, ``onnx.reference`` or onnxruntime for
the real models; an explicit export and import),
``cold`` (first compile with ``CACHE_DIR``), ``warm`` (the second one), ``encrypted``
(``CACHE_ENCRYPTION_CALLBACKS``) and ``weightless`` (``CACHE_MODE=OPTIMIZE_SIZE``). What each mode
checks depends on the capabilities the device reports, never skipped: a device without
EXPORT_IMPORT must write no blob, one without ENCRYPTION must ignore the callbacks, one without
WEIGHTLESS_CACHE must store complete blobs in the weightless mode too.

Every compile of a cell admits its result to the cache (``EMBER_CACHE_ADMIT_ALL``): whether a
cell tests the cache must not depend on how long a compile took, so a missing entry is a failure.

A device that raises :class:`ember.errors.UnsupportedOperatorError` for a model declines the
cell: that is accepted (and reported) when the error names an operator and a node of the model
and the device does not claim all of the model's operators.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import ember
from ember import properties as props
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.crypto import aes_gcm_callbacks
from ember.errors import CacheWarning, EmberError, UnsupportedOperatorError
from ember.runtime.compiled_model import CompiledModel
from ember.store import blob
from ember.testing.contract import SUPPORTED_OPERATORS, resolve_device
from ember.testing.diagnosis import precision_note
from ember.testing.zoo import ZooModel, operator_key, oracle_of

MODES = ("off", "cold", "warm", "encrypted", "weightless")
WEIGHTLESS_CACHE = props.WEIGHTLESS_CACHE
OPTIMIZE_SIZE = "OPTIMIZE_SIZE"
_KEY = bytes(range(32))


@dataclass
class Cell:
    device: str
    model: ZooModel
    mode: str
    workdir: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    claimed: frozenset[str] | None = None
    #: The device must run this model: declining it fails the cell.
    required: bool = False
    #: Set when the device declined the model with UnsupportedOperatorError.
    declined: UnsupportedOperatorError | None = None
    #: After a comparison with the oracle: the largest difference over the largest value, per
    #: output, worst of all outputs.
    worst: float | None = None

    @property
    def label(self) -> str:
        return f"device {self.device}, model {self.model.name}, mode {self.mode}"

    def run(self) -> None:
        getattr(self, f"mode_{self.mode}")()

    # -- compiling and running ---------------------------------------------------------------

    def compile(self, source: Path | bytes | None = None, **extra: Any) -> CompiledModel | None:
        """Compile in a fresh Core (a new process, as far as the cache can tell), or None when
        the device declines the model."""
        core = ember.Core()
        model = self.model.load() if source is None else source
        try:
            with _admitting_every_compile():
                return core.compile_model(model, self.device, {**self.config, **extra})
        except UnsupportedOperatorError as exc:
            if self.required:
                raise AssertionError(f"{self.label}: the device must run this model, yet "
                                     f"declined it: {exc}") from exc
            self._check_refusal(exc)
            self.declined = exc
            return None
        except EmberError as exc:
            raise AssertionError(
                f"{self.label}: compile raised {type(exc).__name__}: {exc}. A device compiles "
                "every model whose operators it runs, and raises UnsupportedOperatorError naming "
                "the first node it cannot run") from exc
        except Exception as exc:
            raise AssertionError(
                f"{self.label}: compile raised {type(exc).__name__}: {exc}, which is not an "
                "ember.errors type: raise UnsupportedOperatorError, InvalidModelError or "
                "PropertyValueError for what the user can act on") from exc

    def _check_refusal(self, exc: UnsupportedOperatorError) -> None:
        op = operator_key(exc.domain, exc.op_type)
        assert exc.device_name in (self.device, resolve_device(self.device)), (
            f"{self.label}: UnsupportedOperatorError names device {exc.device_name!r}")
        assert op in self.model.ops, (
            f"{self.label}: UnsupportedOperatorError names operator {op}, which the model does "
            f"not use (it uses {sorted(self.model.ops)})")
        nodes = {(operator_key(n.domain, n.op_type), n.name) for n in _nodes(self.model.proto())}
        assert (op, exc.node_name) in nodes, (
            f"{self.label}: UnsupportedOperatorError names node {exc.node_name!r}, which is not "
            f"a {op} node of the model: name the node the device cannot run")
        assert self.claimed is None or not self.model.ops <= self.claimed, (
            f"{self.label}: the device claims every operator of the model in "
            f"{SUPPORTED_OPERATORS} but refused {op} (node {exc.node_name!r})")

    def infer(self, compiled: CompiledModel) -> list[np.ndarray]:
        feeds, _ = self.model.reference(compiled.inputs)
        try:
            return list(compiled(feeds).to_tuple())
        except Exception as exc:
            kind = "" if isinstance(exc, EmberError) else ", which is not an ember.errors type"
            raise AssertionError(f"{self.label}: inference raised {type(exc).__name__}: "
                                 f"{exc}{kind}") from exc

    def check_reference(self, compiled: CompiledModel) -> list[np.ndarray]:
        """Run the compiled model and compare with the model's oracle; return the outputs."""
        got = self.infer(compiled)
        _, want = self.model.reference(compiled.inputs)
        oracle = oracle_of(self.model)
        assert len(got) == len(want), (
            f"{self.label}: {len(got)} outputs; {oracle} gives {len(want)}")
        for port, a, b in zip(compiled.outputs, got, want, strict=True):
            where = f"{self.label}: output {port.name!r}"
            assert isinstance(a, np.ndarray), f"{where} is a {type(a).__name__}, not an array"
            assert (a.dtype, a.shape) == (b.dtype, b.shape), (
                f"{where} is {a.dtype}{list(a.shape)}; {oracle} gives {b.dtype}"
                f"{list(b.shape)}")
            scale = float(np.max(np.abs(b))) if b.size else 0.0
            if b.size and np.issubdtype(b.dtype, np.floating):
                worst = float(np.max(np.abs(a.astype(np.float64) - b))) / max(scale, 1e-30)
                self.worst = max(self.worst or 0.0, worst)
            if not np.allclose(a, b, rtol=self.model.rtol, atol=self.model.atol, equal_nan=True):
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                worst = np.unravel_index(int(np.argmax(np.where(np.isnan(diff), np.inf, diff))),
                                         diff.shape)
                raise AssertionError(
                    f"{where} differs from {oracle}: {a[worst]!r} instead of {b[worst]!r} "
                    f"at {tuple(map(int, worst))} (rtol {self.model.rtol}, atol "
                    f"{self.model.atol}; {int((diff > self.model.atol).sum())} of {a.size} "
                    "values differ)" + precision_note(compiled, a, b))
        return got

    def check_identical(self, got: Sequence[np.ndarray], want: Sequence[np.ndarray],
                        what: str) -> None:
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            assert (a.dtype, a.shape) == (b.dtype, b.shape) and a.tobytes() == b.tobytes(), (
                f"{self.label}: output {index} of {what} is not bit for bit the output of the "
                "compiled model it came from; import must rebuild exactly what was exported")

    # -- the device and the cache directory --------------------------------------------------

    def capabilities(self) -> list[str]:
        return list(ember.Core().get_property(self.device, props.OPTIMIZATION_CAPABILITIES))

    def cache_dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def blobs(self, cache_dir: Path) -> list[Path]:
        return sorted((cache_dir / "blobs").glob("*.blob"))

    def check_blobs(self, cache_dir: Path, compiled: CompiledModel | None) -> list[Path]:
        found = self.blobs(cache_dir)
        if compiled is None:
            assert not found, f"{self.label}: a declined model left blobs {found}"
        elif props.EXPORT_IMPORT in self.capabilities():
            # Every compile is admitted here (see compile): no entry is a failure, never a
            # reason to check less.
            assert len(found) == 1, (
                f"{self.label}: an EXPORT_IMPORT device's compile with CACHE_DIR (every compile "
                f"admitted) stores one blob; found {[p.name for p in found]}")
        else:
            assert not found, (
                f"{self.label}: the device has no EXPORT_IMPORT, yet blobs were written: "
                f"{[p.name for p in found]}")
        return found

    def check_loaded(self, compiled: CompiledModel, expected: bool) -> None:
        loaded = compiled.get_property(props.LOADED_FROM_CACHE)
        assert loaded is expected, (
            f"{self.label}: LOADED_FROM_CACHE is {loaded!r}, expected {expected!r}")

    # -- the modes ---------------------------------------------------------------------------

    def mode_off(self) -> None:
        compiled = self.compile(CACHE_DIR="")
        if compiled is None:
            return
        self.check_loaded(compiled, False)
        got = self.check_reference(compiled)
        if props.EXPORT_IMPORT not in self.capabilities():
            try:
                compiled.export_model()
            except ember.errors.NotSupportedError:
                return
            raise AssertionError(f"{self.label}: export_model() without EXPORT_IMPORT must "
                                 "raise NotSupportedError")
        imported = ember.Core().import_model(compiled.export_model(), self.device, self.config)
        assert [(p.name, p.dtype, p.shape) for p in imported.inputs] == [
            (p.name, p.dtype, p.shape) for p in compiled.inputs], (
            f"{self.label}: the imported model's inputs differ from the compiled model's")
        self.check_identical(self.infer(imported), got, "the exported and imported model")

    def mode_cold(self) -> None:
        cache_dir = self.cache_dir("cache")
        compiled = self.compile(CACHE_DIR=str(cache_dir))
        self.check_blobs(cache_dir, compiled)
        if compiled is not None:
            self.check_loaded(compiled, False)
            self.check_reference(compiled)

    def mode_warm(self) -> None:
        cache_dir = self.cache_dir("cache")
        cold = self.compile(CACHE_DIR=str(cache_dir))
        if cold is None:
            self.check_blobs(cache_dir, None)
            return
        cold_outputs = self.check_reference(cold)
        self.check_blobs(cache_dir, cold)  # the entry the warm start needs is there
        warm = self.compile(CACHE_DIR=str(cache_dir))
        assert warm is not None, f"{self.label}: the second compile declined the model"
        self.check_blobs(cache_dir, warm)
        if props.EXPORT_IMPORT in self.capabilities():
            self.check_loaded(warm, True)
            self.check_identical(self.infer(warm), cold_outputs, "the warm start")
        else:
            self.check_loaded(warm, False)
            self.check_reference(warm)

    def mode_encrypted(self) -> None:
        callbacks = aes_gcm_callbacks(_KEY)
        secret_dir = self.cache_dir("secret")
        cold = self.compile(CACHE_DIR=str(secret_dir), CACHE_ENCRYPTION_CALLBACKS=callbacks)
        found = self.check_blobs(secret_dir, cold)
        if cold is None:
            return
        cold_outputs = self.check_reference(cold)
        if props.ENCRYPTION not in self.capabilities():
            for path in found:  # the callbacks are ignored, as OpenVINO ignores them
                header, _ = blob.unpack(path.read_bytes())
                assert "encrypted" not in header.flags, (
                    f"{self.label}: the device has no ENCRYPTION, yet its blob is flagged "
                    "encrypted")
            return
        plain_dir = self.cache_dir("plain")
        self.check_blobs(plain_dir, self.compile(CACHE_DIR=str(plain_dir)))
        (plain_blob,) = self.blobs(plain_dir)
        plain = bytes(blob.unpack(plain_blob.read_bytes())[1])
        header, secret_view = blob.unpack(found[0].read_bytes())
        secret = bytes(secret_view)
        assert "encrypted" in header.flags, f"{self.label}: the blob is not flagged encrypted"
        leaked = [t for t in telltales(self.model.proto())
                  if t.encode() in plain and t.encode() in secret]
        assert not leaked, (
            f"{self.label}: with CACHE_ENCRYPTION_CALLBACKS the payload still shows the topology "
            f"({leaked[:5]}); write it through config['CACHE_ENCRYPTION_CALLBACKS'].encrypt")
        warm = self.compile(CACHE_DIR=str(secret_dir), CACHE_ENCRYPTION_CALLBACKS=callbacks)
        assert warm is not None
        self.check_loaded(warm, True)
        self.check_identical(self.infer(warm), cold_outputs, "the encrypted warm start")
        with_other_key = self._compile_warned(secret_dir, aes_gcm_callbacks(b"k" * 32))
        self.check_loaded(with_other_key, False)
        self.check_reference(with_other_key)

    def _compile_warned(self, cache_dir: Path, callbacks: Any) -> CompiledModel:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = self.compile(CACHE_DIR=str(cache_dir), CACHE_ENCRYPTION_CALLBACKS=callbacks)
        assert compiled is not None
        assert any(issubclass(w.category, CacheWarning) for w in caught), (
            f"{self.label}: a blob encrypted with another key was not reported: import_model "
            "must fail (BlobFormatError) when decrypt does, so that the core recompiles")
        return compiled

    def mode_weightless(self) -> None:
        """``CACHE_MODE=OPTIMIZE_SIZE`` on a model given as a path: a WEIGHTLESS_CACHE device
        stores a blob without the model's weights and reads them back from the file; any other
        device stores a complete blob, as in the default mode."""
        cache_dir = self.cache_dir("cache")
        source = self.model.load()
        if isinstance(source, bytes):
            path = self.workdir / f"{self.model.name}.onnx"
            path.write_bytes(source)
            source = path
        cold = self.compile(source=source, CACHE_DIR=str(cache_dir), CACHE_MODE=OPTIMIZE_SIZE)
        found = self.check_blobs(cache_dir, cold)
        if cold is None:
            return
        outputs = self.check_reference(cold)
        warm = self.compile(source=source, CACHE_DIR=str(cache_dir), CACHE_MODE=OPTIMIZE_SIZE)
        assert warm is not None, f"{self.label}: the second compile declined the model"
        self.check_loaded(warm, props.EXPORT_IMPORT in self.capabilities())
        self.check_identical(self.infer(warm), outputs, "the warm start")
        weightless = WEIGHTLESS_CACHE in self.capabilities()
        for blob_path in found:
            header, payload = blob.unpack(blob_path.read_bytes())
            assert ("weightless" in header.flags) is weightless, (
                f"{self.label}: the blob is{'' if weightless else ' not'} expected to be "
                f"weightless (the device {'lists' if weightless else 'does not list'} "
                f"{WEIGHTLESS_CACHE}), yet its flags are {header.flags}")
            weights = sum(t.ByteSize() for t in self.model.proto().graph.initializer)
            if weightless and weights > 1 << 20:
                assert payload.nbytes < weights, (
                    f"{self.label}: a weightless payload of {payload.nbytes} bytes for "
                    f"{weights} bytes of weights: leave the model's initializers out")


def _nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    found: list[onnx.NodeProto] = []

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            found.append(node)
            for attribute in node.attribute:
                for subgraph in [attribute.g, *attribute.graphs]:
                    walk(subgraph)

    walk(model.graph)
    return found


def telltales(model: onnx.ModelProto, shortest: int = 6, most: int = 64) -> list[str]:
    """Strings that give the topology away: operator types, then node names and intermediate value
    names, long enough that weight bytes do not contain them by chance (at most ``most``)."""
    ports = {v.name for v in [*model.graph.input, *model.graph.output]}
    names = {n.name for n in model.graph.node}
    names |= {v for n in model.graph.node for v in n.output if v not in ports}
    ops = sorted({n.op_type for n in model.graph.node if len(n.op_type) >= shortest})
    return [*ops, *sorted(t for t in names if len(t) >= shortest)][:most]


@contextlib.contextmanager
def _admitting_every_compile() -> Iterator[None]:
    """Set EMBER_CACHE_ADMIT_ALL for one compile, restoring what was there."""
    before = os.environ.get(ADMIT_ALL_ENV)
    os.environ[ADMIT_ALL_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ADMIT_ALL_ENV]
        else:
            os.environ[ADMIT_ALL_ENV] = before
