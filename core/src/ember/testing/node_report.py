"""Pass rates of ONNX's node tests per device and operator: the baseline file that CI compares
against, and the Markdown table kept in the documentation.

Baseline (JSON)::

    {"onnx": "1.22.0",
     "devices": {"CPU": {"full_name": "...", "declined": 39,
                         "operators": {"Abs": {"passed": 1, "run": 1, "failing": {}}, ...}}}}

A device's pass count for an operator may only go up: :func:`regressions` lists the operators
whose count dropped, with the cases that newly fail and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ember.testing.onnx_node_tests import ONNX_VERSION, CaseResult, pass_rates

BEGIN = "<!-- BEGIN pass rates: generated from tests/data/onnx_node_pass_rates.json -->"
END = "<!-- END pass rates -->"


def device_entry(results: Iterable[CaseResult], full_name: str) -> dict[str, Any]:
    results = list(results)
    return {"full_name": full_name,
            "declined": sum(r.status == "unsupported" for r in results),
            "operators": pass_rates(results)}


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        return {"onnx": ONNX_VERSION, "devices": {}}
    return json.loads(path.read_text())


def save_device(path: str | os.PathLike[str], device_name: str, entry: Mapping[str, Any]) -> None:
    baseline = load_baseline(path)
    baseline["onnx"] = ONNX_VERSION
    baseline["devices"][device_name] = entry
    baseline["devices"] = dict(sorted(baseline["devices"].items()))
    Path(path).write_text(json.dumps(baseline, indent=1, sort_keys=True, ensure_ascii=False)
                          + "\n")


def regressions(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    """Operators whose pass count dropped, each with its newly failing cases and reasons."""
    problems = []
    for operator, before in sorted(baseline.get("operators", {}).items()):
        now = current["operators"].get(operator, {"passed": 0, "run": 0, "failing": {}})
        if now["passed"] >= before["passed"]:
            continue
        newly = {c: r for c, r in now["failing"].items() if c not in before["failing"]}
        line = (f"{operator}: {now['passed']}/{now['run']} passed, the baseline has "
                f"{before['passed']}/{before['run']}")
        if newly:
            line += "; newly failing: " + "; ".join(f"{c} ({r})" for c, r in newly.items())
        if now["run"] < before["run"]:
            line += (f"; {before['run'] - now['run']} case(s) no longer run (declined with "
                     "UnsupportedOperatorError, or no longer claimed)")
        problems.append(line)
    return problems


def improvements(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    before = baseline.get("operators", {})
    return [f"{op}: {now['passed']}/{now['run']} (baseline "
            f"{before.get(op, {}).get('passed', 0)}/{before.get(op, {}).get('run', 0)})"
            for op, now in sorted(current["operators"].items())
            if now["passed"] > before.get(op, {}).get("passed", 0)]


def summary_line(device_name: str, entry: Mapping[str, Any]) -> str:
    operators = entry["operators"].values()
    passed = sum(o["passed"] for o in operators)
    run = sum(o["run"] for o in operators)
    clean = sum(o["passed"] == o["run"] for o in operators)
    rate = f"{100 * passed / run:.1f}%" if run else "-"
    return (f"{device_name}: {passed}/{run} cases passed ({rate}); {clean}/{len(operators)} "
            f"operators pass every case; {entry['declined']} cases declined")


def render_markdown(baseline: Mapping[str, Any]) -> str:
    """The generated part of docs/conformance.md."""
    devices = baseline["devices"]
    lines = [BEGIN, "", f"ONNX {baseline['onnx']} node tests.", "",
             "| device | what it is | cases passed / run | rate | operators passing every case "
             "| cases declined |", "| --- | --- | --- | --- | --- | --- |"]
    for name, entry in devices.items():
        operators = entry["operators"].values()
        passed, run = sum(o["passed"] for o in operators), sum(o["run"] for o in operators)
        rate = f"{100 * passed / run:.1f}%" if run else "-"
        clean = sum(o["passed"] == o["run"] for o in operators)
        lines.append(f"| `{name}` | {entry['full_name']} | {passed} / {run} | {rate} | "
                     f"{clean} / {len(operators)} | {entry['declined']} |")
    lines += ["", "### Per operator", "",
              "Cases passed / run; an empty cell: the device does not claim the operator (or "
              "declined all its cases).", "",
              "| operator | " + " | ".join(f"`{d}`" for d in devices) + " |",
              "| --- |" + " ---: |" * len(devices)]
    operators = sorted({op for entry in devices.values() for op in entry["operators"]})
    for op in operators:
        cells = []
        for entry in devices.values():
            counts = entry["operators"].get(op)
            mark = "" if counts is None or counts["passed"] == counts["run"] else " ✗"
            cells.append(f"{counts['passed']}/{counts['run']}{mark}" if counts else "")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += ["", "### Failing cases", ""]
    for name, entry in devices.items():
        failing = [(op, case, reason) for op, counts in entry["operators"].items()
                   for case, reason in counts["failing"].items()]
        lines += [f"#### `{name}` ({len(failing)})", ""]
        lines += [f"- {op}: `{case}`: {reason.replace('|', '/')}" for op, case, reason in failing]
        lines.append("")
    return "\n".join([*lines, END])


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
