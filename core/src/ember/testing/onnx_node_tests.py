"""ONNX's backend node tests (a model plus input and output protobufs per case) as the oracle for
every device's operators.

The onnx 1.23 wheels no longer ship the test data; the 1.22.0 wheel does (1765 cases). On first
use :func:`node_tests_dir` downloads that wheel with pip (``pip download --no-deps onnx==1.22.0
--python-version 3.11 --only-binary=:all:``) into a cache directory and extracts only
``onnx/backend/test/data/node/**``, refusing any member whose name is not a plain relative path;
later runs need no network. From a shell (the command a Makefile step can run)::

    python -m ember.testing.onnx_node_tests --cache-dir .cache/onnx-node-tests [--device CPU]

A case *belongs* to an operator: the op of its single node, or ``"<Op> (expanded)"`` for the
``*_expanded*`` cases, which spell the operator out as its function body. A device runs the cases
whose operators it claims (:func:`ember.testing.contract.claimed_operators`, else every case).
Each case passes, is refused at compile (UnsupportedOperatorError or InvalidModelError), or fails:
what a device accepts it must run right, so an error or a mismatch after a successful compile is
a failure. Cases with non-tensor inputs or outputs (sequences, optionals, maps) cannot be expressed
through Ember's API and are left out.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import onnx
from onnx import numpy_helper

import ember
from ember.errors import InvalidModelError, UnsupportedOperatorError
from ember.testing.zoo import graph_operators, operator_key

ONNX_VERSION = "1.22.0"
CACHE_DIR_ENV = "EMBER_ONNX_NODE_TESTS_DIR"
NODE_PREFIX = "onnx/backend/test/data/node/"
_SAFE_PART = re.compile(r"[A-Za-z0-9_.\-]+")
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
RTOL, ATOL = 1e-3, 1e-7  # onnx.backend.test's defaults
#: Operators whose float error is relative to the magnitude of the whole output, not of each
#: element: a float32 FFT's outputs that should be 0 come out near 1e-6 of the largest one (its
#: rounding), far above ATOL, which float32 cannot resolve at these magnitudes (one ulp of 760 is
#: 6e-5). Their absolute tolerance is this fraction of the largest expected value.
SCALED_ATOL = {"DFT": 1e-5, "STFT": 1e-5}


def default_cache_dir() -> Path:
    """``$EMBER_ONNX_NODE_TESTS_DIR``, else ``.cache/onnx-node-tests`` in the current directory."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.cwd() / ".cache" / "onnx-node-tests")


def node_tests_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory of extracted node tests, downloading and extracting them on first use."""
    import filelock

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    release = root / f"onnx-{ONNX_VERSION}"
    marker = release / "COMPLETE"
    if not marker.is_file():
        root.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(root / "download.lock"):
            if not marker.is_file():
                count = extract_node_tests(_download_wheel(root / "wheels"), release / "node")
                marker.write_text(f"onnx {ONNX_VERSION}: {count} files\n")
    return release / "node"


def _download_wheel(directory: Path) -> Path:
    found = sorted(directory.glob(f"onnx-{ONNX_VERSION}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", f"onnx=={ONNX_VERSION}", "--python-version", "3.11",
             "--only-binary=:all:", "-d", str(directory)], check=True)
        found = sorted(directory.glob(f"onnx-{ONNX_VERSION}-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip downloaded no onnx {ONNX_VERSION} wheel into {directory}")
    return found[0]


def extract_node_tests(wheel: str | os.PathLike[str], destination: str | os.PathLike[str]) -> int:
    """Extract the node tests of an onnx wheel into ``destination``; return the file count.

    :raises ValueError: for a member under the node-test directory whose name is not a plain
        relative path (``..``, absolute, backslashes, odd characters) or that is a symbolic link.
    """
    destination = Path(destination)
    members = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(NODE_PREFIX) or info.is_dir():
                continue
            relative = info.filename[len(NODE_PREFIX):]
            parts = relative.split("/")
            if (not 2 <= len(parts) <= 3 or "\\" in relative
                    or not all(_SAFE_PART.fullmatch(p) and p not in (".", "..") for p in parts)
                    or stat.S_ISLNK(info.external_attr >> 16)):
                raise ValueError(f"refusing member {info.filename!r} of {wheel}: not a plain "
                                 "relative file path")
            members.append((info, PurePosixPath(relative)))
        partial = destination.with_name(f"{destination.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        for info, relative in members:
            target = partial.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return len(members)


@dataclass(frozen=True)
class NodeTestCase:
    name: str
    directory: Path
    #: The operator the case belongs to ("Relu", "Softmax (expanded)", "ai.onnx.ml::Scaler").
    operator: str
    #: Every operator in its graph.
    ops: frozenset[str]
    #: False when an input or output is not a tensor (sequence, optional, map).
    tensor_io: bool

    def model_bytes(self) -> bytes:
        return (self.directory / "model.onnx").read_bytes()

    def data_sets(self) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
        sets = []
        for data_dir in sorted(self.directory.glob("test_data_set_*")):
            sets.append(tuple(
                [_read_tensor(path) for path in sorted(data_dir.glob(f"{kind}_*.pb"),
                                                       key=lambda p: int(p.stem.split("_")[1]))]
                for kind in ("input", "output")))
        return sets  # type: ignore[return-value]


def _read_tensor(path: Path) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


@functools.cache
def node_test_cases(cache_dir: str | None = None) -> tuple[NodeTestCase, ...]:
    """Every node-test case, sorted by name; downloaded on first use (:func:`node_tests_dir`)."""
    root = node_tests_dir(cache_dir)
    models = {d.name: onnx.load(str(d / "model.onnx"), load_external_data=False)
              for d in sorted(root.iterdir()) if (d / "model.onnx").is_file()}
    cases = []
    for name, model in models.items():
        base = _EXPANDED.sub("", name)
        if base != name and base in models and len(models[base].graph.node) == 1:
            node = models[base].graph.node[0]
            operator = f"{operator_key(node.domain, node.op_type)} (expanded)"
        else:
            node = model.graph.node[0]
            operator = operator_key(node.domain, node.op_type)
        tensor_io = all(v.type.HasField("tensor_type")
                        for v in [*model.graph.input, *model.graph.output])
        cases.append(NodeTestCase(name, root / name, operator, graph_operators(model), tensor_io))
    return tuple(cases)


#: A case's outcome: it passed; the device refused it at compile (UnsupportedOperatorError or
#: InvalidModelError: what a device does not run, it says so up front); or it failed: compile
#: raised something else, or after a successful compile inference raised or the outputs differ.
PASSED, REFUSED, FAILED = "passed", "refused", "failed"


@dataclass(frozen=True)
class CaseResult:
    case: str
    operator: str
    status: str  # PASSED, REFUSED or FAILED
    reason: str = ""


def run_case(core: ember.Core, device_name: str, case: NodeTestCase) -> CaseResult:
    """Compile a case without cache, run each data set, compare like onnx.backend.test does."""

    def result(status: str, reason: str = "") -> CaseResult:
        return CaseResult(case.name, case.operator, status, _short(reason))

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            compiled = core.compile_model(case.model_bytes(), device_name, {"CACHE_DIR": ""})
        except (UnsupportedOperatorError, InvalidModelError) as exc:
            return result(REFUSED, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            return result(FAILED, f"compile: {type(exc).__name__}: {exc}")
        for inputs, expected in case.data_sets():
            if len(inputs) != len(compiled.inputs):
                return result(FAILED, f"{len(inputs)} inputs for {len(compiled.inputs)} ports")
            feeds = {port.name: array for port, array in zip(compiled.inputs, inputs, strict=True)}
            try:
                got = compiled(feeds).to_tuple()
            except Exception as exc:
                return result(FAILED, f"infer: {type(exc).__name__}: {exc}")
            scale = SCALED_ATOL.get(case.operator)
            atol = max([ATOL, *(scale * float(np.max(np.abs(ref), initial=0.0)) for ref in expected
                                if scale and ref.dtype.kind in "fc")])
            problem = compare_outputs(got, expected, atol=atol)
            if problem:
                return result(FAILED, problem)
    return result(PASSED)


def compare_outputs(got: Sequence[np.ndarray], expected: Sequence[np.ndarray],
                    rtol: float = RTOL, atol: float = ATOL) -> str:
    """What differs, as onnx.backend.test's runner compares; '' when nothing does."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for index, (out, ref) in enumerate(zip(got, expected, strict=True)):
        out = np.asarray(out)
        if out.shape != ref.shape:
            return f"output {index}: shape {list(out.shape)}, expected {list(ref.shape)}"
        if ref.dtype == object:
            if not np.array_equal(out, ref):
                return f"output {index}: strings differ"
            continue
        if out.dtype != ref.dtype:
            return f"output {index}: dtype {out.dtype}, expected {ref.dtype}"
        tolerance = rtol
        if ref.dtype.kind not in "biufc":  # ml_dtypes: bfloat16, float8, int4...
            tolerance = max(rtol, 2**-6) if ref.dtype.name == "bfloat16" else rtol
            out, ref = out.astype(np.float32), ref.astype(np.float32)
        if not np.allclose(out, ref, rtol=tolerance, atol=atol, equal_nan=True):
            diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
            worst = int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)))
            return (f"output {index}: {out.flat[worst]!r} instead of {ref.flat[worst]!r} at flat "
                    f"index {worst} ({int((diff > atol).sum())} of {ref.size} values differ)")
    return ""


def _short(reason: str, head: int = 100, tail: int = 160) -> str:
    """One line; long messages keep their start and their end (where onnxruntime says why)."""
    text = _ADDRESS.sub("0x…", " ".join(reason.split()))
    return text if len(text) <= head + tail + 3 else f"{text[:head]} … {text[-tail:]}"


def run_node_tests(core: ember.Core, device_name: str, cases: Iterable[NodeTestCase],
                   claimed: frozenset[str] | None) -> list[CaseResult]:
    """Run the tensor cases a device claims (all of them when ``claimed`` is None). A claimed
    case the device refuses at compile counts as refused, its reason saying it was claimed."""
    results = []
    for case in cases:
        if not case.tensor_io or (claimed is not None and not case.ops <= claimed):
            continue
        outcome = run_case(core, device_name, case)
        if outcome.status == REFUSED and claimed is not None:
            outcome = CaseResult(outcome.case, outcome.operator, REFUSED,
                                 f"claimed, yet compile said: {outcome.reason}")
        results.append(outcome)
    return results


def pass_rates(results: Iterable[CaseResult]) -> dict[str, dict[str, object]]:
    """Per operator: cases passed, cases run after a successful compile, cases refused at
    compile, and the failing cases with their reasons."""
    rates: dict[str, dict[str, object]] = {}
    for outcome in sorted(results, key=lambda r: (r.operator, r.case)):
        entry = rates.setdefault(outcome.operator,
                                 {"passed": 0, "run": 0, "refused": 0, "failing": {}})
        if outcome.status == REFUSED:
            entry["refused"] = int(entry["refused"]) + 1  # type: ignore[call-overload]
            continue
        entry["run"] = int(entry["run"]) + 1  # type: ignore[call-overload]
        if outcome.status == PASSED:
            entry["passed"] = int(entry["passed"]) + 1  # type: ignore[call-overload]
        else:
            entry["failing"][outcome.case] = outcome.reason  # type: ignore[index]
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ember.testing.onnx_node_tests",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_DIR_ENV} or "
                        "./.cache/onnx-node-tests")
    parser.add_argument("--device", action="append", default=[],
                        help="run the cases this device claims and print its pass rates")
    args = parser.parse_args(argv)
    cases = node_test_cases(args.cache_dir)
    print(f"{len(cases)} ONNX {ONNX_VERSION} node-test cases in {node_tests_dir(args.cache_dir)}")
    from ember.testing.contract import claimed_operators

    core = ember.Core()
    for device in args.device:
        results = run_node_tests(core, device, cases, claimed_operators(core, device))
        passed = sum(r.status == PASSED for r in results)
        refused = sum(r.status == REFUSED for r in results)
        print(f"{device}: {passed}/{len(results) - refused} passed, {refused} refused at compile")
        for operator, entry in pass_rates(results).items():
            for case, reason in entry["failing"].items():  # type: ignore[attr-defined]
                print(f"  {operator}: {case}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
