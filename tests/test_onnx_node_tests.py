"""ONNX's own operator tests (the 1765 node tests of onnx 1.22.0) on every installed device.

Each device runs the cases for the operators it claims. The baseline,
tests/data/onnx_node_pass_rates.json, holds the set of passing case names per device: a case that
passed and no longer does fails this test by name, even when other cases started passing. The
data is downloaded once into .cache/onnx-node-tests at the repository root.

After fixing a kernel (or on a new device), record the new results and regenerate the table in
docs/conformance.md with ``make node-baseline``. It refuses to drop a passing case unless
``EMBER_NODE_BASELINE_DROPS`` names a JSON file that explains each one::

    {"CPU": {"test_dropped_case": "why it may stop passing"}}
"""

import importlib.metadata
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

import ember
from ember.contract.device import one_name_per_device
from ember.testing.contract import claimed_operators
from ember.testing.notes import note
from ember.testing.onnx_node_tests import (
    FAILED,
    NODE_PREFIX,
    PASSED,
    REFUSED,
    CaseResult,
    extract_node_tests,
    node_test_cases,
    run_node_tests,
)
from ember_devtools import node_report

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".cache" / "onnx-node-tests"
BASELINE = ROOT / "tests" / "data" / "onnx_node_pass_rates.json"
DOCS = ROOT / "docs" / "conformance.md"
UPDATE = os.environ.get("EMBER_UPDATE_NODE_BASELINE") == "1"
DROPS = os.environ.get("EMBER_NODE_BASELINE_DROPS")
# each device once: OPENVINO.CPU is the device OPENVINO is
DEVICES = one_name_per_device(ember.Core(), ember.Core().available_devices)
#: What the results depend on besides Ember (make install pins onnxruntime, PoCL and OpenVINO);
#: recorded with the baseline, and a difference is reported before any case is.
VERSIONED = ("onnxruntime", "pocl-binary-distribution", "openvino", "numpy", "onnx")


def installed_versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


@pytest.fixture(scope="session")
def cases():
    start = time.perf_counter()
    found = node_test_cases(str(CACHE_DIR))
    print(f"{len(found)} node-test cases ready in {time.perf_counter() - start:.1f} s")
    return found


@pytest.mark.parametrize("device_name", DEVICES)
def test_no_passing_case_drops(request, cases, device_name):
    core = ember.Core()
    claimed = claimed_operators(core, device_name)  # None: what its compile accepts
    start = time.perf_counter()
    results = run_node_tests(core, device_name, cases, claimed)
    elapsed = time.perf_counter() - start
    entry = node_report.device_entry(results, core.get_property(device_name, "FULL_DEVICE_NAME"),
                                     installed_versions())
    summary = node_report.summary_line(device_name, entry)
    note(request.config, "ember: ONNX node tests", f"{summary} in {elapsed:.1f} s")
    print(summary)
    # What a device accepts, it runs right: a case it cannot run is refused at compile.
    failed = [f"{r.case}: {r.reason}" for r in results if r.status == FAILED]
    assert not failed, (f"{device_name}: {len(failed)} case(s) compiled and then failed; fix them "
                        "or refuse them at compile:\n" + "\n".join(failed))
    baseline = node_report.load_baseline(BASELINE)["devices"].get(device_name)
    dropped = node_report.dropped_cases(entry, baseline or {})
    if UPDATE:
        allowed = node_report.load_allowed_drops(DROPS, device_name)
        unexplained = node_report.unexplained_drops(dropped, allowed)
        assert not unexplained, (
            f"{device_name}: the new baseline would drop {len(unexplained)} passing case(s); "
            "fix them, or explain each in a JSON file named by EMBER_NODE_BASELINE_DROPS "
            f'({{"{device_name}": {{"case": "reason"}}}}):\n' + "\n".join(unexplained))
        node_report.save_device(BASELINE, device_name, entry,
                                {case: allowed[case] for case in dropped})
        DOCS.write_text(node_report.replace_generated(
            DOCS.read_text(), node_report.render_markdown(node_report.load_baseline(BASELINE))))
        return
    if baseline is None:
        note(request.config, "ember: ONNX node tests",
             f"{device_name}: no baseline yet; record one with make node-baseline")
        return
    recorded = baseline.get("versions", {})
    changed = {k: (v, entry["versions"].get(k)) for k, v in recorded.items()
               if k in ("onnxruntime", "pocl-binary-distribution", "openvino")
               and entry["versions"].get(k) != v}
    assert not changed, (
        f"{device_name}: the baseline was recorded with other versions {changed} (recorded, "
        "installed): install the pinned ones (make install), or record a new baseline")
    better = node_report.new_passes(entry, baseline)
    if better:
        note(request.config, "ember: ONNX node tests",
             f"{device_name}: {len(better)} more case(s) pass, e.g. {better[0]}: record them "
             "with make node-baseline")
    assert not dropped, (f"{device_name}: {len(dropped)} case(s) of {BASELINE.name} no longer "
                         "pass:\n" + "\n".join(f"{c}: {r}" for c, r in sorted(dropped.items())))


def test_docs_table_matches_the_baseline():
    """docs/conformance.md shows the baseline's numbers (regenerated by the update above)."""
    expected = node_report.render_markdown(node_report.load_baseline(BASELINE))
    assert node_report.generated_section(DOCS.read_text()) == expected, (
        "docs/conformance.md is out of date: run make node-baseline")


def test_every_case_belongs_to_an_operator(cases):
    assert len(cases) == 1765
    assert all(case.operator and case.ops for case in cases)
    expanded = [c for c in cases if c.operator.endswith(" (expanded)")]
    assert {c.name for c in expanded} == {c.name for c in cases if "_expanded" in c.name}


@pytest.mark.parametrize("member", [
    "../evil.py", "test_x/../../evil.py", "/abs/model.onnx", "test_x\\model.onnx",
    "test_x/a/b/c.pb", "test_x/mödel.onnx",
])
def test_extraction_refuses_unsafe_member_names(tmp_path, member):
    wheel = tmp_path / "onnx-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(NODE_PREFIX + "test_ok/model.onnx", b"model")
        archive.writestr(NODE_PREFIX + member, b"evil")
    with pytest.raises(ValueError, match="refusing member"):
        extract_node_tests(wheel, tmp_path / "node")
    assert not (tmp_path / "node").exists() and not (tmp_path / "evil.py").exists()


def test_extraction_keeps_only_the_node_tests(tmp_path):
    wheel = tmp_path / "onnx-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(NODE_PREFIX + "test_ok/model.onnx", b"model")
        archive.writestr(NODE_PREFIX + "test_ok/test_data_set_0/input_0.pb", b"input")
        archive.writestr("onnx/__init__.py", b"code")
    assert extract_node_tests(wheel, tmp_path / "node") == 2
    files = sorted(p.relative_to(tmp_path / "node").as_posix()
                   for p in (tmp_path / "node").rglob("*") if p.is_file())
    assert files == ["test_ok/model.onnx", "test_ok/test_data_set_0/input_0.pb"]


def _entry(passing, failing=(), refusing=()):
    """A device entry as device_entry makes it, from case names (all of operator Op)."""
    results = [CaseResult(c, "Op", PASSED) for c in passing]
    results += [CaseResult(c, "Op", FAILED, "infer: it broke") for c in failing]
    results += [CaseResult(c, "Op", REFUSED, "UnsupportedOperatorError") for c in refusing]
    return node_report.device_entry(results, "a device", {"onnxruntime": "1.32.0"})


def test_a_case_that_stops_passing_is_named_even_when_another_starts():
    baseline = _entry(["test_a", "test_b"], failing=["test_c"])
    current = _entry(["test_a", "test_c"], failing=["test_b"])
    assert node_report.counts(current)[0] == node_report.counts(baseline)[0]  # same count
    assert node_report.dropped_cases(current, baseline) == {"test_b": "failed: infer: it broke"}
    assert node_report.new_passes(current, baseline) == ["test_c"]
    refused_now = _entry(["test_a"], refusing=["test_b"])
    assert node_report.dropped_cases(refused_now, baseline) == {
        "test_b": "refused: UnsupportedOperatorError"}
    gone = _entry(["test_a"])
    assert "no longer run" in node_report.dropped_cases(gone, baseline)["test_b"]


def test_recording_a_drop_needs_a_reason(tmp_path):
    dropped = {"test_b": "failed: infer: it broke", "test_d": "refused: ..."}
    drops = tmp_path / "drops.json"
    drops.write_text(json.dumps({"GPU": {"test_b": "PoCL 3 miscompiles it"},
                                 "GPU.0": {"test_d": " "}}))
    allowed = node_report.load_allowed_drops(drops, "GPU.0")
    assert node_report.unexplained_drops(dropped, allowed) == ["test_d (refused: ...)"]
    assert node_report.unexplained_drops(dropped, {}) == [
        "test_b (failed: infer: it broke)", "test_d (refused: ...)"]
    baseline = tmp_path / "baseline.json"
    node_report.save_device(baseline, "GPU.0", _entry(["test_a"]), {"test_b": allowed["test_b"]})
    saved = node_report.load_baseline(baseline)["devices"]["GPU.0"]
    assert saved["passing"] == ["test_a"] and saved["dropped"] == {
        "test_b": "PoCL 3 miscompiles it"}
