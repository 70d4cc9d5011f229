"""Docs are code: the code blocks of docs/ and the READMEs run, and what the pages say about the API
is checked against the API.

Conventions for a fenced ```python block (an HTML comment on the line before the fence, invisible
once rendered):

- no marker: a complete program. It runs in a fresh interpreter, in an empty directory, with a
  model store of its own (``EMBER_HOME``), and must exit with status 0 (``test_python_blocks_run``).
- ``<!-- docs: continued -->``: the program goes on from the page's previous block; the blocks run
  together as one program (a page that walks through one session, as quickstart.md does).
- ``<!-- docs: fragment -->``: an excerpt, not a program (an API summary with names the reader
  fills in, a configuration that needs a server of the reader's own); it must still parse.
- ``<!-- docs: file -->``: the content of a file that another test writes out and uses; the line
  before it names the file (`` `ember-reference/src/ember_reference/plugin.py`: ``). The minimal
  plugin of writing-a-device-plugin.md is made of such files
  (``test_the_minimal_plugin_passes_the_suite``).
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ember.testing.notes import note
from ember.testing.wheelhouse import checkout_environment

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md", *sorted(ROOT.glob("*/README.md")),
         *sorted(ROOT.glob("plugins/*/README.md"))]
MARKERS = ("continued", "fragment", "file")
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*docs:\s*(\w+)\s*-->")
_LABEL = re.compile(r"`([\w./-]+)`:$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    marker: str | None  # one of MARKERS, or None for a complete program
    label: str | None  # the file name on the line before, for file blocks

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with their marker and file label."""
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = [line.strip() for line in text[: match.start()].splitlines() if line.strip()]
        marker = _MARKER.fullmatch(before[-1]) if before else None
        label_line = before[-2 if marker else -1] if len(before) > (1 if marker else 0) else ""
        label = _LABEL.search(label_line)
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group(1),
                           match.group(2), marker.group(1) if marker else None,
                           label.group(1) if label else None))
    return found


def programs() -> list[list[Block]]:
    """Each complete program: a block with no marker, plus the ``continued`` blocks after it."""
    found: list[list[Block]] = []
    for page in PAGES:
        current: list[Block] | None = None
        for block in blocks(page):
            if block.language != "python":
                continue
            if block.marker is None:
                current = [block]
                found.append(current)
            elif block.marker == "continued":
                assert current is not None, f"{block.where}: 'continued' with no program before"
                current.append(block)
    return found


def test_markers_are_known_and_every_block_parses():
    for page in PAGES:
        for block in blocks(page):
            assert block.marker in (None, *MARKERS), (
                f"{block.where}: unknown marker {block.marker!r}; use one of {MARKERS}")
            if block.marker == "file":
                assert block.label, f"{block.where}: a file block needs `path`: on the line before"
            if block.language == "python":
                ast.parse(block.code, filename=block.where)


@pytest.mark.parametrize("program", programs(), ids=lambda p: p[0].where)
def test_python_blocks_run(program, tmp_path):
    code = "\n".join(block.code for block in program)
    # A model store of its own (ember.save_model writes there), and no cache set from outside.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_CACHE")}
    env["EMBER_HOME"] = str(tmp_path / "ember-home")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, (
        f"the program at {', '.join(b.where for b in program)} failed:\n"
        f"{run.stdout[-3000:]}\n{run.stderr[-5000:]}")


# -- the minimal plugin of writing-a-device-plugin.md ------------------------------------------

PLUGIN_PAGE = DOCS / "writing-a-device-plugin.md"
PLUGIN_SECTION = "## A complete minimal plugin"


def minimal_plugin() -> tuple[dict[str, str], str]:
    """The files (by path) and the ```sh commands of the page's minimal plugin, as written."""
    text = PLUGIN_PAGE.read_text()
    assert PLUGIN_SECTION in text, f"{PLUGIN_PAGE} has no section {PLUGIN_SECTION!r}"
    section = [b for b in blocks(PLUGIN_PAGE)
               if text.count("\n", 0, text.index(PLUGIN_SECTION)) < b.line
               < text.count("\n", 0, text.index("\n## ", text.index(PLUGIN_SECTION) + 1))]
    files = {b.label: b.code for b in section if b.label}
    commands = [b.code for b in section if b.language == "sh"]
    assert len(commands) == 1, f"{PLUGIN_SECTION}: expected one ```sh block, found {commands}"
    return files, commands[0]


def test_the_minimal_plugin_is_what_the_page_describes():
    files, commands = minimal_plugin()
    assert sorted(files) == ["ember-reference/pyproject.toml",
                             "ember-reference/src/ember_reference/__init__.py",
                             "ember-reference/src/ember_reference/plugin.py",
                             "ember-reference/tests/test_reference.py"]
    # The entry point is named after the device kind it provides.
    assert 'REFERENCE = "ember_reference.plugin"' in files["ember-reference/pyproject.toml"]
    assert "--ember-device REFERENCE" in commands and "pip install" in commands
    plugin = ast.parse(files["ember-reference/src/ember_reference/plugin.py"])
    top_imports = {alias.name.split(".")[0] for node in plugin.body
                   if isinstance(node, ast.Import | ast.ImportFrom)
                   for alias in (node.names if isinstance(node, ast.Import)
                                 else [ast.alias(node.module or "")])}
    assert top_imports <= {"ember", "numpy", "importlib", "struct"}, (
        f"the plugin imports {sorted(top_imports)} at module level: import onnx inside hooks")


@pytest.fixture(scope="session")
def environment(tmp_path_factory):
    # The wheels of the checkout in a fresh venv, shared with tests/test_wheels.py.
    return checkout_environment(ROOT, tmp_path_factory.getbasetemp() / "wheel-environment")


@pytest.mark.slow
def test_the_minimal_plugin_passes_the_suite(request, environment, tmp_path):
    """The page's files and commands, run as written in the venv where Ember's wheels are
    installed: the plugin builds and installs, and the conformance suite and the plugin's own
    tests pass. The plugin is uninstalled afterwards, leaving the shared venv as it was."""
    files, commands = minimal_plugin()
    for relative, code in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(code)
    venv = environment.venv
    start = time.perf_counter()
    try:
        run = subprocess.run(["bash", "-c", "set -euxo pipefail\n" + commands], cwd=tmp_path,
                             env=venv.environ(), capture_output=True, text=True)
    finally:
        venv.run("-m", "pip", "uninstall", "--yes", "ember-reference")
    note(request.config, "ember: wheels in a fresh venv",
         f"the docs' minimal plugin: its commands {time.perf_counter() - start:.1f} s")
    output = run.stdout[-8000:] + run.stderr[-4000:]
    assert run.returncode == 0, output
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, output


# -- what the pages say about the API, checked against the API ---------------------------------


def hookspecs() -> dict[str, tuple[str, ...]]:
    """Every hook of ``ember.contract.hookspecs`` with its argument names, as pluggy reads them."""
    from ember.contract.plugin_manager import load_plugins

    manager = load_plugins(load_entry_points=False).manager
    return {name: tuple(caller.spec.argnames) for name, caller in vars(manager.hook).items()
            if caller.spec is not None}


def test_every_hook_and_argument_is_in_the_plugin_guide():
    """The guide has a heading per hook naming all its arguments, as
    ``ember.contract.hookspecs`` declares them (datasette's test_plugin_hooks_have_tests idea): a
    new hook or argument fails here until it is documented, and so does a heading for a hook
    that no longer exists."""
    text = PLUGIN_PAGE.read_text()
    headings = dict(re.findall(r"^### `(\w+)\(([^)]*)\)", text, re.M))
    specs = hookspecs()
    assert len(specs) >= 6
    problems = []
    for name, argnames in specs.items():
        if name not in headings:
            problems.append(f"no heading ### `{name}({', '.join(argnames)})`")
            continue
        documented = tuple(a.strip() for a in headings[name].split(",") if a.strip())
        if documented != argnames:
            problems.append(f"### `{name}({headings[name]})`: the spec's arguments are "
                            f"{', '.join(argnames)}")
    problems += [f"### `{name}(...)` documents a hook ember.contract.hookspecs does not have"
                 for name in headings if name not in specs]
    assert not problems, f"{PLUGIN_PAGE.name}: " + "; ".join(problems)


def _resolve(dotted: str) -> object:
    """The object a dotted name such as ``ember.cache.stats`` names; AttributeError otherwise."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise AttributeError(dotted)


#: Dotted names in the docs that are not Python objects: the entry-point group and the logger.
_NOT_PYTHON = {"ember.devices", "ember.plugins"}
#: File extensions: `core.py` and `model.onnx` are file names, not attributes.
_FILE_SUFFIXES = {"py", "onnx", "xml", "md", "toml", "json", "blob"}
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


@pytest.fixture(scope="module")
def instances():
    """The objects the pages' variable names stand for: a Core, a Model, a CompiledModel..."""
    import ember
    from ember.testing import mlp

    core = ember.Core()
    model = core.read_model(mlp().SerializeToString())
    compiled = core.compile_model(model, "TEMPLATE")
    return {"core": core, "model": model, "compiled": compiled,
            "request": compiled.create_infer_request(), "port": model.inputs[0]}


def _prose(page: Path) -> str:
    """A page's text without the OpenVINO column of the table comparing the two APIs."""
    lines, openvino_table = [], False
    for line in page.read_text().splitlines():
        openvino_table = line.startswith("| OpenVINO |") or (openvino_table and
                                                             line.startswith("|"))
        lines.append("|" + "|".join(line.split("|")[2:]) if openvino_table else line)
    return "\n".join(lines)


def test_names_in_the_docs_exist(instances):
    """Every ``ember.x.y`` and every ``core.x``, ``compiled.x``, ``request.x``, ``port.x`` and
    ``model.x`` written in inline code in the pages is an attribute of what it names."""
    problems = []
    for page in PAGES:
        for span in _CODE_SPAN.findall(_prose(page)):
            for dotted in re.findall(r"(?<![\w.])ember(?:\.\w+)+", span):
                if dotted in _NOT_PYTHON:
                    continue
                try:
                    _resolve(dotted)
                except AttributeError:
                    problems.append(f"{page.relative_to(ROOT)}: `{span}`: no {dotted}")
            for variable, attribute in re.findall(r"(?<![\w.\"'/])(\w+)\.(\w+)", span):
                if (variable in instances and attribute not in _FILE_SUFFIXES
                        and not hasattr(instances[variable], attribute)):
                    problems.append(f"{page.relative_to(ROOT)}: `{span}`: a {variable} has no "
                                    f"{attribute}")
    assert not problems, "\n".join(problems)


def _table_column(page: Path, header: str) -> list[str]:
    """The first cells of the rows of the table whose header row starts with ``| header |``."""
    text = page.read_text()
    start = text.index(f"| {header} |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_property_tables_name_real_properties():
    from ember import properties

    known = {v for k, v in vars(properties).items() if k.isupper() and isinstance(v, str)}
    for page, header in ((DOCS / "quickstart.md", "key"), (PLUGIN_PAGE, "key")):
        for cell in _table_column(page, header):
            for key in re.findall(r"`([A-Z_]+)`", cell):
                assert key in known, f"{page.name}: {key} is not in ember.properties"


def test_error_table_names_real_errors_and_their_bases():
    from ember import errors

    rows = [line.split("|")[1:3] for line in (DOCS / "quickstart.md").read_text().splitlines()
            if line.startswith("| `") and "Error` | `" in line]
    assert len(rows) >= 8
    for name_cell, base_cell in rows:
        error = getattr(errors, name_cell.strip().strip("`"))
        base = getattr(builtins, base_cell.strip().strip("`"))
        assert issubclass(error, errors.EmberError) and issubclass(error, base), name_cell


def test_testing_helpers_table_names_real_helpers():
    import ember.testing

    cells = _table_column(PLUGIN_PAGE, "name")
    assert len(cells) >= 5
    for cell in cells:
        name = re.match(r"`(\w+)\(", cell).group(1)
        assert callable(getattr(ember.testing, name)), f"ember.testing has no {name}"


def test_every_documented_check_of_the_suite_exists():
    """The other direction of tests/test_conformance_matrix.py's meta-test: no row for a check
    that is gone."""
    from ember.testing.suite import DeviceConformance

    for cell in _table_column(DOCS / "testing-your-plugin.md", "test"):
        name = re.match(r"`(test_\w+)", cell).group(1)
        assert hasattr(DeviceConformance, name), f"testing-your-plugin.md documents {name}"


# -- the site -----------------------------------------------------------------------------------


def test_the_docs_site_builds_in_strict_mode(tmp_path):
    """mkdocs.yml: docs/, the READMEs and the API reference from the docstrings. Strict mode fails
    on a link to a missing page or anchor and on anything the docstring reader warns about."""
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    reference = (site / "reference" / "hookspecs" / "index.html").read_text()
    missing = [hook for hook in hookspecs()
               if f'id="ember.contract.hookspecs.{hook}"' not in reference]
    assert not missing, f"the API reference lacks the hooks {missing}"
    assert (site / "packages" / "template" / "index.html").is_file()
