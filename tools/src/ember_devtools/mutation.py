"""Mutation testing of the modules that decide whether a cached model is the right one, with
cosmic-ray: ``python -m ember_devtools.mutation [MODULE...]`` (``make mutation``).

For each module, cosmic-ray plants one small change at a time in the file (in the working tree;
it restores it after each run), runs only that module's fast test files, and records whether a
test failed (the mutant is *killed*) or not (it *survived*). The report gives the score per
module and every survivor with its diff: each survivor is either a missing test or an
*equivalent* mutant (one that cannot change behaviour), and docs/testing.md lists those kept.

Operators: cosmic-ray's own set minus the arithmetic and comparison swaps that no one would
write by mistake (``+`` into ``<<``, ``<`` into ``is``); what is kept matches mutmut's choice:
each operator into its natural neighbour (``<`` and ``<=``, ``==`` and ``!=``, ``+`` and ``-``,
``and`` and ``or``...), numbers, booleans, ``not`` added or removed, ``break``/``continue``,
exceptions and loops. A line marked ``# pragma: no mutate`` is skipped.

Run it from the repository's root, one or two modules at a time on a shared machine. Mutants
are planted in a copy of the tree (``.cache/mutation/tree-<modules>``, the files git tracks or
would track, as they are now), put first on ``PYTHONPATH``: the working tree is never changed,
so an interrupted run leaves no mutant behind and work can go on meanwhile. Sessions are kept
under ``.cache/mutation/``: ``--resume`` continues an interrupted one, and ``--survivors`` runs
a kept session's survivors again once tests were written for them (the other mutants keep their
results: tests only get added).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ADMISSION_TESTS = tuple(f"core/tests/test_cache.py::{name}" for name in (
    "test_cheap_compiles_are_not_admitted",
    "test_a_one_time_cost_of_the_first_export_does_not_refuse_admission"))
#: module name -> (file, its fast test files). Slow suites (the conformance matrix, the
#: processes tests) are left out: a mutant is run against these only, first failure stops.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "key": ("core/src/ember/cache/key.py", ("core/tests/test_cache_key.py",)),
    "blob": ("core/src/ember/store/blob.py",
             ("core/tests/test_blob.py", "core/tests/test_bounds.py")),
    "signing": ("core/src/ember/store/signing.py",
                ("core/tests/test_signing.py", "core/tests/test_bounds.py",
                 "core/tests/test_cache_integrity.py")),
    "safe_json": ("core/src/ember/common/safe_json.py", ("core/tests/test_bounds.py",)),
    "settings": ("core/src/ember/runtime/settings.py",
                 ("core/tests/test_settings.py", "core/tests/test_bounds.py",
                  "core/tests/test_core.py")),
    # the toy plugin's tests: test_cache.py (real models, ~40 s) would make a survivor cost that
    "store": ("core/src/ember/cache/local.py",
              ("core/tests/test_cache_integrity.py", "core/tests/test_cache_store.py",
               "core/tests/test_cache_key.py")),
    # tests/test_cached_compile.py first: every path of the module in seconds, with the real
    # Redis of tests/conftest.py as the remote tier
    "cached_compile": ("core/src/ember/cache/cached_compile.py",
                       ("tests/test_cached_compile.py", "core/tests/test_cache_integrity.py",
                        "core/tests/test_cache_store.py",
                        "core/tests/test_cache_key.py", *ADMISSION_TESTS)),
    # in this process (test_plugin_loading.py tries the same in fresh interpreters, far slower)
    "plugin_index": ("core/src/ember/contract/plugin_index.py",
                     ("core/tests/test_plugin_index.py",)),
    "cpu_payload": ("plugins/cpu/src/ember_cpu/payload.py",
                    ("plugins/cpu/tests/test_cpu_payload.py",)),
    "gpu_plan_codec": ("plugins/gpu/src/ember_gpu/plan_codec.py",
                       ("plugins/gpu/tests/test_gpu_plan_codec.py",)),
    "template_plan_format": ("plugins/template/src/ember_template/plan_format.py",
                             ("plugins/template/tests/test_template_plan_format.py",
                              "plugins/template/tests/test_template_device.py")),
}

_NATURAL_BINARY = ("Add_Sub", "Sub_Add", "Mul_Div", "Div_Mul", "FloorDiv_Div", "Mod_FloorDiv",
                   "BitAnd_BitOr", "BitOr_BitAnd", "BitXor_BitOr", "LShift_RShift",
                   "RShift_LShift", "Pow_Mul")
_NATURAL_COMPARISON = ("Lt_LtE", "LtE_Lt", "Gt_GtE", "GtE_Gt", "Eq_NotEq", "NotEq_Eq",
                       "Is_IsNot", "IsNot_Is", "In_NotIn", "NotIn_In")
_NATURAL_UNARY = ("Delete_Not", "Delete_USub", "USub_UAdd", "Delete_Invert")
EXCLUDED_OPERATORS = [
    f"core/ReplaceBinaryOperator_(?!({'|'.join(_NATURAL_BINARY)})$)",
    f"core/ReplaceComparisonOperator_(?!({'|'.join(_NATURAL_COMPARISON)})$)",
    f"core/ReplaceUnaryOperator_(?!({'|'.join(_NATURAL_UNARY)})$)",
]

SESSIONS = Path(".cache/mutation").absolute()
_SOURCE_DIRS = ("core/src", "plugins/cpu/src", "plugins/gpu/src", "plugins/template/src",
                "tools/src")


def copy_tree(tree: Path) -> dict[str, str]:
    """Copy the repository's files into ``tree``; return the environment that imports them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    shutil.rmtree(tree, ignore_errors=True)
    for name in filter(None, listed.decode().split("\0")):
        if name.startswith(".cache/") or not os.path.isfile(name):
            continue
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(name, target)
    paths = [str(tree / d) for d in _SOURCE_DIRS]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [*paths, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}


def config_text(path: str, tests: tuple[str, ...], timeout: float) -> str:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-p", "no:randomly", *tests]
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    return (f'[cosmic-ray]\nmodule-path = "{path}"\ntimeout = {timeout}\n'
            f"excluded-modules = []\ntest-command = {json.dumps(' '.join(command))}\n\n"
            f'[cosmic-ray.distributor]\nname = "local"\n\n'
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n")


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def forget_survivors(session: Path) -> int:
    """Mark a kept session's survivors as not run, so that ``--resume`` runs them again (against
    the tests as they are now); return how many."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(session)) as db, db:
        return db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount


def run_module(name: str, resume: bool, tree: Path, env: dict[str, str]) -> dict[str, Any]:
    path, tests = MODULES[name]
    config, session = SESSIONS / f"{name}.toml", SESSIONS / f"{name}.sqlite"
    start = time.monotonic()
    baseline = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *tests], capture_output=True, text=True, check=False, cwd=tree,
                              env=env)
    if baseline.returncode != 0:
        raise SystemExit(f"{name}: its tests fail before any mutation:\n{baseline.stdout}")
    seconds = time.monotonic() - start
    config.write_text(config_text(path, tests, timeout=max(60.0, 10 * seconds)))
    if not (resume and session.exists()):
        session.unlink(missing_ok=True)
        for command in ([tool("cosmic-ray"), "init", str(config), str(session)],
                        [tool("cr-filter-operators"), str(session), str(config)],
                        [tool("cr-filter-pragma"), str(session)]):
            subprocess.run(command, check=True, cwd=tree, env=env)
        skip_unevaluated(session, Path(path))
    subprocess.run([tool("cosmic-ray"), "exec", str(config), str(session)], check=True,
                   cwd=tree, env=env)
    return summarize(name, session)


def skip_unevaluated(session: Path, path: Path) -> None:
    """Mark the mutants inside annotations as skipped: they need not run (see summarize)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans = _unevaluated_spans(path)
    with use_db(str(session), WorkDB.Mode.open) as work_db:
        for item in list(work_db.pending_work_items):
            position = tuple(item.mutations[0].start_pos)
            if any(start <= position < end for start, end in spans):
                work_db.set_result(item.job_id, WorkResult(
                    output="in an annotation", worker_outcome=WorkerOutcome.SKIPPED))


def summarize(name: str, session: Path) -> dict[str, Any]:
    """Count a session's mutants. Mutants inside an annotation or on the ``*`` that makes the
    following parameters keyword-only are counted apart, as *unevaluated*: every module here has
    ``from __future__ import annotations``, so they cannot change behaviour."""
    dump = subprocess.run([tool("cosmic-ray"), "dump", str(session)], capture_output=True,
                          text=True, check=True).stdout
    unevaluated = _unevaluated_spans(Path(MODULES[name][0]))
    killed, survivors, pending, not_evaluated = 0, [], 0, 0
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None:
            pending += 1
            continue
        if result["worker_outcome"] == "skipped" and result["output"] != "in an annotation":
            continue  # an operator left out, or a line marked no mutate
        mutation = item["mutations"][0]
        position = tuple(mutation["start_pos"])
        if any(start <= position < end for start, end in unevaluated):
            not_evaluated += 1
            continue
        if result["test_outcome"] == "survived":
            survivors.append({"line": position[0],
                              "operator": mutation["operator_name"].removeprefix("core/"),
                              "function": mutation.get("definition_name"),
                              "diff": _changed_lines(result.get("diff") or "")})
        else:  # killed, or incompetent (the mutant does not even import): caught either way
            killed += 1
    total = killed + len(survivors)
    return {"module": name, "file": MODULES[name][0], "mutants": total, "killed": killed,
            "survived": len(survivors), "pending": pending, "unevaluated": not_evaluated,
            "score": round(100 * killed / total, 1) if total else None,
            "survivors": sorted(survivors, key=lambda s: s["line"])}


def _unevaluated_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of the annotations and bare ``*`` markers of a module."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    spans = []
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.returns is not None:
                annotations.append(node.returns)
            if node.args.kwonlyargs and node.args.vararg is None:
                # the bare "*": the first "*" of the signature not part of an expression
                for number in range(node.lineno, node.body[0].lineno):
                    text = lines[number - 1]
                    column = text.find("*,")
                    if column < 0:
                        column = text.find("* ") if text.rstrip().endswith("*") else -1
                    if column >= 0:
                        spans.append(((number, column), (number, column + 1)))
                        break
        spans += [((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
                  for a in annotations]
    return spans


def _changed_lines(diff: str) -> str:
    return "\n".join(line for line in diff.splitlines()
                     if line[:1] in "+-" and not line.startswith(("+++", "---")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--resume", action="store_true", help="continue kept sessions")
    parser.add_argument("--survivors", action="store_true",
                        help="run a kept session's survivors again, against the tests as they "
                             "are now (after tests were added for them)")
    parser.add_argument("--report", action="store_true",
                        help="only summarize the kept sessions, run nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}: choose among {', '.join(MODULES)}")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    results = []
    SESSIONS.mkdir(parents=True, exist_ok=True)
    names = args.modules or list(MODULES)
    # a copy per run: two runs side by side must not see each other's mutants
    tree = SESSIONS / ("tree-" + "-".join(names) if args.modules else "tree-all")
    env = {} if args.report else copy_tree(tree)
    for name in names:
        session = SESSIONS / f"{name}.sqlite"
        if args.report and not session.exists():
            print(f"{name}: no session kept (not run yet)")
            continue
        if args.survivors and session.exists():
            print(f"{name}: {forget_survivors(session)} survivors to run again", flush=True)
        result = (summarize(name, session) if args.report
                  else run_module(name, args.resume or args.survivors, tree, env))
        results.append(result)
        print(f"{name}: {result['killed']} of {result['mutants']} mutants killed "
              f"({result['score']}%), {result['pending']} not run, {result['unevaluated']} in "
              "annotations (not evaluated, not counted)", flush=True)
        for survivor in result["survivors"]:
            print(f"  survived {result['file']}:{survivor['line']} {survivor['operator']} "
                  f"in {survivor['function']}\n    " + survivor["diff"].replace("\n", "\n    "))
    (SESSIONS / "report.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
