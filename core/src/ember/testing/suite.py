"""Ember's conformance suite: the device-plugin contract, checked for one device.

Reuse it the way fsspec's abstract tests are reused: subclass :class:`DeviceConformance` in a test
module (a class name starting with ``Test``) and give it a ``device_name`` fixture::

    import pytest
    from ember.testing.suite import DeviceConformance

    class TestMyDeviceConformance(DeviceConformance):
        @pytest.fixture
        def device_name(self):
            return "MYDEVICE"

Optional fixtures: ``device_config`` (config passed to every compile, default ``{}``) and
``claimed_operators`` (the operators the device runs; default: its ``SUPPORTED_OPERATORS`` metric,
or None, meaning whatever its compile accepts) and ``required_models`` (zoo models it must not
decline; default none). ``pytest --ember-device MYDEVICE`` runs the same
suite on an installed device with no test file at all. Every check that depends on a capability
asserts the documented behaviour of a device without it; nothing is skipped.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ember
from ember import properties as props
from ember.errors import (
    BlobFormatError,
    CacheWarning,
    EmberError,
    InferenceInputError,
    InvalidModelError,
    UnknownPropertyError,
    UnsupportedOperatorError,
)
from ember.store import blob
from ember.testing import contract
from ember.testing.cells import MODES, Cell
from ember.testing.diagnosis import foreign_cause
from ember.testing.models import mlp
from ember.testing.notes import note
from ember.testing.zoo import absent_models, graph_operators, model_zoo, oracle_of, zoo_model

ZOO = [m.name for m in model_zoo()]
_COMPILABLE: dict[tuple[str, str], str] = {}
_SECTION = "ember conformance: models a device declined (UnsupportedOperatorError)"
_ABSENT_SECTION = "ember conformance: zoo models not on this machine (their cells did not run)"
_SECTION_NOTHING_CACHED = "ember conformance: damaged-cache check with no entry to damage"


def _graph_model(nodes: list[Any], inputs: list[Any], outputs: list[Any],
                 initializers: tuple[Any, ...] = (), domains: tuple[str, ...] = ()) -> bytes:
    graph = helper.make_graph(nodes, "conformance_probe", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def _value(name: str, shape: list[Any]) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


class DeviceConformance:
    """The suite. Subclasses provide the ``device_name`` fixture."""

    # -- fixtures ----------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _say_which_models_are_absent(self, request: pytest.FixtureRequest) -> None:
        """A run without the real models says so at its end, rather than running fewer cells."""
        for line in absent_models():
            note(request.config, _ABSENT_SECTION, line)

    @pytest.fixture
    def device_name(self) -> str:
        pytest.fail(f"{type(self).__name__} subclasses DeviceConformance: give it a "
                    "device_name fixture returning the device to test", False)

    @pytest.fixture
    def device_config(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def core(self, device_name: str) -> ember.Core:
        return ember.Core()

    @pytest.fixture
    def claimed_operators(self, core: ember.Core, device_name: str) -> frozenset[str] | None:
        return contract.claimed_operators(core, device_name)

    @pytest.fixture
    def required_models(self, device_name: str) -> frozenset[str]:
        """Zoo models the device must run: declining one fails its cells."""
        return frozenset()

    @pytest.fixture
    def compilable(self, device_name: str, device_config: dict[str, Any],
                   tmp_path_factory: pytest.TempPathFactory) -> str:
        """The first zoo model the device compiles; every device compiles at least one."""
        key = (device_name, repr(sorted(device_config.items())))
        if key not in _COMPILABLE:
            _COMPILABLE[key] = _first_compilable(device_name, device_config,
                                                 tmp_path_factory.mktemp("probe"))
        return _COMPILABLE[key]

    # -- the device and its plugin -----------------------------------------------------------

    def test_device_is_listed(self, core: ember.Core, device_name: str) -> None:
        # A kind ("GPU") is listed when Core resolves it to a listed device ("GPU.0").
        assert contract.resolve_device(device_name) in core.available_devices, (
            f"device {device_name!r} is not available: {core.available_devices}; "
            f"failures: {[str(f) for f in core.plugin_failures]}")

    def test_plugin_declares_its_contract_and_ember_range(self, device_name: str) -> None:
        problems = contract.declaration_problems(device_name)
        assert not problems, "\n".join(problems)

    def test_hooks_answer_only_for_their_own_devices(self, device_name: str) -> None:
        model = ember.Core(load_installed_plugins=False).read_model(mlp().SerializeToString())
        problems = contract.dispatch_problems(device_name, model)
        assert not problems, "\n".join(problems)

    def test_metrics_are_well_formed(self, device_name: str) -> None:
        problems = contract.metrics_problems(device_name)
        assert not problems, "\n".join(problems)

    def test_properties_are_well_formed(self, core: ember.Core, device_name: str) -> None:
        problems = contract.property_problems(core, device_name)
        assert not problems, "\n".join(problems)

    def test_config_keys_round_trip_through_set_property(self, device_name: str) -> None:
        core = ember.Core()
        keys = [k for k in core.get_property(device_name, props.SUPPORTED_CONFIG_KEYS)
                if k not in props.CORE_CONFIG_KEYS]
        defaults = {key: core.get_property(device_name, key) for key in keys}
        core.set_property(device_name, defaults)
        for key, value in defaults.items():
            assert core.get_property(device_name, key) == value, (
                f"{device_name}: get_property({key!r}) does not give back its default {value!r}")
        with pytest.raises(UnknownPropertyError):
            core.compile_model(mlp().SerializeToString(), device_name,
                               {"EMBER_CONFORMANCE_NO_SUCH_KEY": 1})

    def test_zoo_declares_the_operators_its_models_use(self) -> None:
        for entry in model_zoo():
            actual = graph_operators(entry.proto())
            assert actual == entry.ops, (
                f"zoo model {entry.name}: declared {sorted(entry.ops ^ actual)} wrongly")

    # -- the matrix: zoo model x cache mode --------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("model_name", ZOO)
    def test_zoo(self, request: pytest.FixtureRequest, device_name: str, model_name: str,
                 mode: str, device_config: dict[str, Any],
                 claimed_operators: frozenset[str] | None, required_models: frozenset[str],
                 tmp_path: Any) -> None:
        cell = Cell(device_name, zoo_model(model_name), mode, tmp_path, device_config,
                    claimed_operators, required=model_name in required_models)
        cell.run()
        if cell.declined is not None:
            note(request.config, _SECTION, f"{device_name}: {model_name}: {cell.declined}")
        if mode == "off" and cell.worst is not None and "real" in cell.model.tags:
            note(request.config, "ember conformance: real models against their oracle",
                 f"{device_name} {model_name}: worst difference {cell.worst:.1e} of the "
                 f"largest output value ({oracle_of(cell.model)})")

    # -- the model cache -----------------------------------------------------------------------

    def test_damaged_cache_entries_fall_back_to_compile(
            self, request: pytest.FixtureRequest, device_name: str,
            device_config: dict[str, Any], compilable: str, tmp_path: Any) -> None:
        # The first zoo model whose compile leaves a cache entry: every compile of a cell is
        # admitted, but a device without EXPORT_IMPORT may cache kernels only for some models.
        for name in [compilable, *(n for n in ZOO if n != compilable)]:
            cell = Cell(device_name, zoo_model(name), "damaged", tmp_path / name, device_config)
            cache_dir = cell.cache_dir("cache")
            if cell.compile(CACHE_DIR=str(cache_dir)) is None:
                continue
            entries = sorted((cache_dir / "blobs").glob("*"))
            if entries:
                break
        else:  # nothing to damage: say so at the end of the run, rather than pass in silence
            note(request.config, _SECTION_NOTHING_CACHED,
                 f"{device_name}: no zoo model's compile left a cache entry to damage")
            cell = Cell(device_name, zoo_model(compilable), "damaged", tmp_path / compilable,
                        device_config)
            cache_dir, entries = cell.cache_dir("cache"), []
        for path in entries:  # flip one byte in the middle of every entry (.blob or .cl_cache)
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            damaged = cell.compile(CACHE_DIR=str(cache_dir))
        if entries:
            assert any(issubclass(w.category, CacheWarning) for w in caught), (
                f"{cell.label}: damaged cache entries were used without a CacheWarning")
        assert damaged is not None
        cell.check_loaded(damaged, False)
        cell.check_reference(damaged)
        if props.EXPORT_IMPORT not in cell.capabilities():
            cell.check_blobs(cache_dir, damaged)
            return
        cell.check_loaded(cell.compile(CACHE_DIR=str(cache_dir)), True)  # the entry was replaced
        # A container intact around a payload the plugin cannot read: the plugin must refuse it.
        (path,) = cell.blobs(cache_dir)
        header, payload = blob.unpack(path.read_bytes())
        fields = {k: v for k, v in header._asdict().items()
                  if k not in ("payload_length", "payload_checksum")}
        path.write_bytes(blob.pack(fields, bytes(payload[: len(payload) // 3])))
        with pytest.warns(CacheWarning, match="could not be imported"):
            recompiled = cell.compile(CACHE_DIR=str(cache_dir))
        assert recompiled is not None
        cell.check_loaded(recompiled, False)
        cell.check_reference(recompiled)

    # -- errors are Ember's own --------------------------------------------------------------

    def test_unsupported_operator_names_the_node(self, core: ember.Core,
                                                 device_name: str) -> None:
        model = _graph_model(
            [helper.make_node("Relu", ["x"], ["r"], name="supported_first"),
             helper.make_node("NoSuchOp", ["r"], ["y"], name="mystery_node",
                              domain="com.ember.conformance")],
            [_value("x", [2])], [_value("y", [2])], domains=("com.ember.conformance",))
        error = _raises(UnsupportedOperatorError, device_name, "an operator of an unknown domain",
                        lambda: core.compile_model(model, device_name, {"CACHE_DIR": ""}))
        got = (error.op_type, error.node_name, error.domain)
        assert got == ("NoSuchOp", "mystery_node", "com.ember.conformance"), (
            f"{device_name}: UnsupportedOperatorError names {got}; name the operator, its "
            "domain and the node the device cannot run")

    def test_invalid_model_raises_invalid_model_error(self, core: ember.Core,
                                                      device_name: str) -> None:
        model = _graph_model([helper.make_node("Relu", ["nowhere"], ["y"], name="dangling")],
                             [_value("x", [3])], [_value("y", [3])])
        _raises(InvalidModelError, device_name, "a node reading an undefined value",
                lambda: core.compile_model(model, device_name, {"CACHE_DIR": ""}))

    def test_damaged_payload_raises_blob_format_error(self, core: ember.Core, device_name: str,
                                                      device_config: dict[str, Any],
                                                      compilable: str) -> None:
        owner = contract.owner_of(device_name)
        fields = {"ember_version": ember.__version__, "plugin": owner.info.distribution or "",
                  "plugin_version": owner.info.version or "", "device": device_name,
                  "device_architecture": core.get_property(device_name,
                                                           props.DEVICE_ARCHITECTURE)}
        garbage = blob.pack(fields, b"not a payload of this device" * 3)
        if props.EXPORT_IMPORT not in core.get_property(device_name,
                                                        props.OPTIMIZATION_CAPABILITIES):
            with pytest.raises(EmberError):  # no import_model hook: the core says it cannot
                core.import_model(garbage, device_name)
            return
        compiled = core.compile_model(zoo_model(compilable).load(), device_name,
                                      {**device_config, "CACHE_DIR": ""})
        _, payload = blob.unpack(compiled.export_model())
        truncated = blob.pack(fields, bytes(payload[: len(payload) // 3]))
        for data, what in ((garbage, "a foreign payload"), (truncated, "a truncated payload")):
            _raises(BlobFormatError, device_name, f"import_model of {what}",
                    lambda d=data: core.import_model(d, device_name, device_config))

    def test_an_imported_model_exports_and_imports_again(self, device_name: str,
                                                         device_config: dict[str, Any],
                                                         compilable: str, tmp_path: Any) -> None:
        """Export, import, export what was imported, import that: the same ports and, bit for
        bit, the same outputs (a device that re-exports an imported model wrongly fails here,
        although its first export and import are right)."""
        cell = Cell(device_name, zoo_model(compilable), "reimport", tmp_path, device_config)
        compiled = cell.compile(CACHE_DIR="")
        assert compiled is not None
        if props.EXPORT_IMPORT not in cell.capabilities():
            with pytest.raises(EmberError):
                compiled.export_model()
            return
        expected = cell.infer(compiled)
        imported = ember.Core().import_model(compiled.export_model(), device_name, device_config)
        again = ember.Core().import_model(imported.export_model(), device_name, device_config)
        for port, other in zip(compiled.outputs, again.outputs, strict=True):
            assert (port.name, port.dtype, port.shape) == (other.name, other.dtype, other.shape), (
                f"{cell.label}: output {port.name!r} of the model imported twice is "
                f"{other.name!r} {other.dtype}{other.shape}, not {port.dtype}{port.shape}")
        assert [(p.name, p.dtype, p.shape) for p in again.inputs] == [
            (p.name, p.dtype, p.shape) for p in compiled.inputs], (
            f"{cell.label}: the inputs of the model imported twice differ from the compiled one's")
        cell.check_identical(cell.infer(again), expected,
                             "a model exported from an imported one and imported again")

    def test_wrong_inputs_raise_inference_input_error(self, device_name: str,
                                                      device_config: dict[str, Any],
                                                      compilable: str) -> None:
        compiled = ember.Core().compile_model(zoo_model(compilable).load(), device_name,
                                              device_config)
        port = compiled.inputs[0]
        with pytest.raises(InferenceInputError):
            compiled({port.name: np.zeros((1,) * (len(port.shape) + 1), port.dtype)})
        with pytest.raises(InferenceInputError):
            compiled({"EMBER_CONFORMANCE_NO_SUCH_INPUT": np.zeros(1, np.float32)})

    # -- running -------------------------------------------------------------------------------

    def test_concurrent_infer_requests(self, device_name: str, device_config: dict[str, Any],
                                       compilable: str, tmp_path: Any) -> None:
        cell = Cell(device_name, zoo_model(compilable), "threads", tmp_path, device_config)
        compiled = cell.compile(CACHE_DIR="")
        assert compiled is not None
        feeds, _ = cell.model.reference(compiled.inputs)
        expected = compiled(feeds).to_tuple()
        results: list[Any] = [None] * 4

        def work(index: int) -> None:
            request = compiled.create_infer_request()
            results[index] = [request.infer(feeds).to_tuple() for _ in range(3)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for runs in results:
            assert runs is not None, f"{cell.label}: an infer request raised in its thread"
            for outputs in runs:
                cell.check_identical(outputs, expected, "an infer request on another thread")

    def test_outputs_are_the_callers_own(self, request: pytest.FixtureRequest,
                                         core: ember.Core, device_name: str,
                                         device_config: dict[str, Any], compilable: str,
                                         tmp_path: Any) -> None:
        """An output is neither a view of an input nor of the model's own constants. A device
        that declines the probe (Reshape of an input, Identity of a weight) is held to the first
        zoo model it compiles instead."""
        constant = numpy_helper.from_array(np.arange(4, dtype=np.float32), "constant")
        model = _graph_model(
            [helper.make_node("Reshape", ["x", "flat"], ["y"], name="flatten_view"),
             helper.make_node("Identity", ["constant"], ["z"], name="constant_out")],
            [_value("x", [2, 2])], [_value("y", [4]), _value("z", [4])],
            (constant, numpy_helper.from_array(np.array([4], dtype=np.int64), "flat")))
        try:
            compiled = core.compile_model(model, device_name, {"CACHE_DIR": ""})
        except UnsupportedOperatorError as exc:
            note(request.config, _SECTION, f"{device_name}: outputs probe: {exc}; "
                                           f"checked on {compilable} instead")
            _check_outputs_are_owned(Cell(device_name, zoo_model(compilable), "outputs",
                                          tmp_path, device_config))
            return
        except Exception as exc:
            raise AssertionError(f"{device_name}: compiling Reshape and Identity raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        x = np.arange(4, dtype=np.float32).reshape(2, 2)
        y, z = compiled({"x": x}).to_tuple()
        assert not np.shares_memory(y, x), (
            f"{device_name}: an output is a view of the caller's input: copy it")
        if z.flags.writeable:
            z[...] = -1
        again = compiled({"x": x})[1]
        assert again.tolist() == [0.0, 1.0, 2.0, 3.0], (
            f"{device_name}: writing into an output changed the model's constant: return a copy")
        assert x.tolist() == [[0.0, 1.0], [2.0, 3.0]], f"{device_name}: infer wrote into its input"


def _check_outputs_are_owned(cell: Cell) -> None:
    """No output shares memory with an input, and writing into the outputs changes neither the
    inputs nor the next inference's results."""
    compiled = cell.compile(CACHE_DIR="")
    assert compiled is not None, f"{cell.label}: declined a model it compiled before"
    feeds, _ = cell.model.reference(compiled.inputs)
    inputs = {name: array.copy() for name, array in feeds.items()}
    outputs = compiled(inputs).to_tuple()
    expected = [output.copy() for output in outputs]
    for port, output in zip(compiled.outputs, outputs, strict=True):
        for name, array in inputs.items():
            assert not np.shares_memory(output, array), (
                f"{cell.label}: output {port.name!r} is a view of input {name!r}: copy it")
        if output.flags.writeable:
            output[...] = 0
    for name, array in inputs.items():
        assert array.tobytes() == feeds[name].tobytes(), f"{cell.label}: infer wrote into {name!r}"
    cell.check_identical(compiled(inputs).to_tuple(), expected,
                         "inference after the caller wrote into the previous outputs")


def _first_compilable(device_name: str, config: dict[str, Any], workdir: Any) -> str:
    declined = []
    for name in ZOO:
        cell = Cell(device_name, zoo_model(name), "off", workdir, config)
        if cell.compile(CACHE_DIR="") is not None:
            return name
        declined.append(f"{name} ({cell.declined})")
    pytest.fail(f"device {device_name} declines every model of the zoo: {declined}", False)


def _raises(expected: type[EmberError], device_name: str, what: str, call: Any) -> Any:
    """Run ``call`` and return the ``expected`` error it raised; fail saying what to raise."""
    try:
        call()
    except expected as exc:
        return exc
    except Exception as exc:
        raised = foreign_cause(exc)  # what the plugin raised, before the core wrapped it
        kind = "" if isinstance(raised, EmberError) else ", which is not an ember.errors type"
        raise AssertionError(f"{device_name}: {what} raised {type(raised).__name__}: {raised}"
                             f"{kind}; raise ember.errors.{expected.__name__}") from exc
    raise AssertionError(f"{device_name}: {what} raised nothing; expected "
                         f"ember.errors.{expected.__name__}")
