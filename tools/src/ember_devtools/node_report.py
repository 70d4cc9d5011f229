"""ONNX node-test results per device: the baseline file that CI compares against, and the Markdown
table kept in the documentation.

Baseline (JSON)::

    {"onnx": "1.22.0",
     "devices": {"CPU": {"full_name": "...", "versions": {"onnxruntime": "1.32.0", ...},
                         "passing": ["test_abs", ...],
                         "operators": {"Abs": {"passed": 1, "run": 1, "refused": 0,
                                               "failing": {}, "refusing": {}}, ...},
                         "dropped": {"test_x": "why it may stop passing"}}}}

The baseline is the *set* of passing case names per device: a case that passed and now fails (or
is refused) fails CI by name, whatever else started passing (:func:`dropped_cases`). Recording a
new baseline refuses to drop a case unless a drops file names it with a reason
(:func:`unexplained_drops`); the accepted drops are kept in the entry's ``dropped``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ember.testing.onnx_node_tests import (
    ONNX_VERSION,
    PASSED,
    REFUSED,
    CaseResult,
    pass_rates,
)

BEGIN = "<!-- BEGIN pass rates: generated from tests/data/onnx_node_pass_rates.json -->"
END = "<!-- END pass rates -->"


def device_entry(results: Iterable[CaseResult], full_name: str,
                 versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    results = list(results)
    operators = pass_rates(results)
    for outcome in results:  # why each refused case was refused
        if outcome.status == REFUSED:
            operators[outcome.operator].setdefault("refusing", {})[outcome.case] = outcome.reason
    for entry in operators.values():
        entry.setdefault("refusing", {})
    return {"full_name": full_name, "versions": dict(sorted((versions or {}).items())),
            "passing": sorted(r.case for r in results if r.status == PASSED),
            "operators": operators}


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        return {"onnx": ONNX_VERSION, "devices": {}}
    return json.loads(path.read_text())


def save_device(path: str | os.PathLike[str], device_name: str, entry: Mapping[str, Any],
                dropped: Mapping[str, str] | None = None) -> None:
    """Write ``entry`` as ``device_name``'s baseline; ``dropped`` (case -> reason) adds to the
    drops accepted so far."""
    baseline = load_baseline(path)
    baseline["onnx"] = ONNX_VERSION
    previous = baseline["devices"].get(device_name, {}).get("dropped", {})
    baseline["devices"][device_name] = {**entry, "dropped": {**previous, **(dropped or {})}}
    baseline["devices"] = dict(sorted(baseline["devices"].items()))
    Path(path).write_text(json.dumps(baseline, indent=1, sort_keys=True, ensure_ascii=False)
                          + "\n")


def outcomes(entry: Mapping[str, Any]) -> dict[str, str]:
    """Each failing or refused case of an entry, with what happened to it."""
    found = {}
    for operator in entry["operators"].values():
        found.update({c: f"failed: {r}" for c, r in operator["failing"].items()})
        found.update({c: f"refused: {r}" for c, r in operator.get("refusing", {}).items()})
    return found


def dropped_cases(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, str]:
    """The cases the baseline lists as passing that do not pass now, with what they do now
    (failed, refused, or no longer run). An old baseline without the list drops nothing."""
    now = set(current["passing"])
    what = outcomes(current)
    return {case: what.get(case, "no longer run (its operators are no longer claimed)")
            for case in baseline.get("passing", []) if case not in now}


def new_passes(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    return sorted(set(current["passing"]) - set(baseline.get("passing", [])))


def unexplained_drops(dropped: Mapping[str, str], allowed: Mapping[str, Any]) -> list[str]:
    """Dropped cases that ``allowed`` (case -> reason, from a drops file) does not explain."""
    return [f"{case} ({now})" for case, now in sorted(dropped.items())
            if not isinstance(allowed.get(case), str) or not allowed[case].strip()]


def load_allowed_drops(path: str | os.PathLike[str] | None, device_name: str) -> dict[str, str]:
    """The drops file's cases for ``device_name``: ``{"TEMPLATE": {"test_x": "why"}}``; a device
    kind (``GPU``) also covers its numbered devices (``GPU.0``)."""
    if not path:
        return {}
    document = json.loads(Path(path).read_text())
    kind = device_name.split(".", 1)[0]
    return {**document.get(kind, {}), **document.get(device_name, {})}


def counts(entry: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(passed, accepted, refused, failed after compile or at compile with a foreign error)."""
    operators = entry["operators"].values()
    passed = sum(o["passed"] for o in operators)
    run = sum(o["run"] for o in operators)
    refused = sum(o.get("refused", 0) for o in operators)
    return passed, run, refused, run - passed


def summary_line(device_name: str, entry: Mapping[str, Any]) -> str:
    passed, run, refused, failed = counts(entry)
    rate = f"{100 * passed / run:.1f}%" if run else "-"
    return (f"{device_name}: {passed}/{run} accepted cases passed ({rate}); {failed} failed after "
            f"compile; {refused} refused at compile")


def render_markdown(baseline: Mapping[str, Any]) -> str:
    """The generated part of docs/conformance.md."""
    devices = baseline["devices"]
    lines = [BEGIN, "", f"ONNX {baseline['onnx']} node tests.", "",
             "| device | what it is | passed / accepted | rate | failed after compile "
             "| refused at compile | operators passing every accepted case |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in devices.items():
        passed, run, refused, failed = counts(entry)
        rate = f"{100 * passed / run:.1f}%" if run else "-"
        operators = [o for o in entry["operators"].values() if o["run"]]
        clean = sum(o["passed"] == o["run"] for o in operators)
        lines.append(f"| `{name}` | {entry['full_name']} | {passed} / {run} | {rate} | {failed} "
                     f"| {refused} | {clean} / {len(operators)} |")
    versions = {f"{k} {v}" for entry in devices.values()
                for k, v in entry.get("versions", {}).items()}
    if versions:
        lines += ["", "Recorded with " + ", ".join(sorted(versions)) + "."]
    lines += ["", "### Per operator", "",
              "Cases passed / accepted (compiled), then how many the device refused at compile; "
              "an empty cell: the device does not claim the operator.", "",
              "| operator | " + " | ".join(f"`{d}`" for d in devices) + " |",
              "| --- |" + " ---: |" * len(devices)]
    all_operators = sorted({op for entry in devices.values() for op in entry["operators"]})
    for op in all_operators:
        cells = []
        for entry in devices.values():
            c = entry["operators"].get(op)
            if c is None:
                cells.append("")
                continue
            mark = "" if c["passed"] == c["run"] else " ✗"
            refused = f", {c['refused']} refused" if c.get("refused") else ""
            cells.append(f"{c['passed']}/{c['run']}{mark}{refused}")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += ["", "### Failing cases (accepted, then wrong)", ""]
    for name, entry in devices.items():
        failing = [(op, case, reason) for op, c in entry["operators"].items()
                   for case, reason in c["failing"].items()]
        lines += [f"#### `{name}` ({len(failing)})", ""]
        lines += [f"- {op}: `{case}`: {_cell(reason)}" for op, case, reason in failing]
        lines.append("")
    lines += ["### Refused at compile", ""]
    for name, entry in devices.items():
        refusing = [(op, case, reason) for op, c in entry["operators"].items()
                    for case, reason in c.get("refusing", {}).items()]
        lines += [f"<details><summary><code>{name}</code> ({len(refusing)})</summary>", ""]
        lines += [f"- {op}: `{case}`: {_cell(reason)}" for op, case, reason in refusing]
        lines += ["", "</details>", ""]
    return "\n".join([*lines, END])


def _cell(reason: str) -> str:
    return reason.replace("|", "/")


def replace_generated(text: str, generated: str) -> str:
    """``text`` with its generated section (between BEGIN and END) replaced, or appended."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + generated + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + generated + "\n"


def generated_section(text: str) -> str:
    if BEGIN not in text or END not in text:
        return ""
    return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
