"""The docs agree with the code where a test can tell: the plugin page's hook headings are the hook
specs' names and signatures, and each names the types and cache methods its spec documents;
core/README.md's module table names real modules and its limitations match the devices."""

import ast
import builtins
import importlib
import inspect
import re
from pathlib import Path

import pytest

import ember
from ember import properties as props
from ember.contract import hookspecs

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PAGE = ROOT / "docs" / "writing-a-device-plugin.md"
ERRORS_PAGE = ROOT / "docs" / "reference" / "errors.md"
CORE_README = ROOT / "core" / "README.md"


def hook_specs() -> dict[str, object]:
    return {name: value for name, value in vars(hookspecs).items()
            if callable(value) and hasattr(value, "ember_spec")}


def page_sections() -> dict[str, tuple[str, str]]:
    """Hook name -> (its heading's signature, the section's text) on the plugin page."""
    text = PLUGIN_PAGE.read_text()
    found = {}
    for match in re.finditer(r"^### `(\w+)\((.*?)\) -> (.+?)`\n(.*?)(?=^#{2,3} )", text,
                             re.M | re.S):
        name, params, returns, _ = match.groups()
        found[name] = (f"({params}) -> {returns}", match.group(0))
    return found


def test_every_hook_spec_has_a_heading_with_its_signature():
    specs, sections = hook_specs(), page_sections()
    assert set(specs) == {"list_devices", "explain_absence", "supported_metrics", "compile",
                          "export_model", "import_model"}
    assert set(sections) == set(specs), "the page's hook headings are not the specs"
    for name, spec in specs.items():
        signature = inspect.signature(spec)
        wanted = f"({', '.join(signature.parameters)}) -> {signature.return_annotation}"
        assert sections[name][0] == wanted, f"{name}: the page says {sections[name][0]}"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_each_hook_section_names_what_its_spec_documents(name):
    """The classes and cache methods a spec's docstring names appear in the page's section."""
    doc = inspect.getdoc(hook_specs()[name]) or ""
    classes = {ref.rsplit(".", 1)[-1] for ref in re.findall(r":class:`~?([\w.]+)`", doc)}
    methods = set(re.findall(r"``cache\.(\w+)\(", doc))
    body = page_sections()[name][1]
    missing = sorted(c for c in classes if c not in body) + sorted(
        f"cache.{m}" for m in methods if f"{m}(" not in body)
    assert not missing, f"the page's section on {name} does not mention {missing}"


def _hook_functions(path: Path) -> list[tuple[str, str]]:
    """(function name, hook name) of each ``@hookimpl`` function of a plugin module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Name) and decorator.id == "hookimpl":
                found.append((node.name, node.name))
            elif (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
                  and decorator.func.id == "hookimpl"):
                named = {k.arg: k.value for k in decorator.keywords}
                spec = named.get("specname")
                found.append((node.name, spec.value if isinstance(spec, ast.Constant)
                               else node.name))
    return found


def test_first_party_hooks_are_specs_under_names_that_shadow_no_builtin():
    """The page says how to implement ``compile`` without shadowing Python's ``compile()``; the
    first-party plugins do so (and so does what ``ember plugin new`` copies from the template),
    and each of their hook functions implements a spec."""
    assert '@hookimpl(specname="compile")' in PLUGIN_PAGE.read_text()
    modules = sorted(ROOT.glob("plugins/*/src/*/plugin.py"))
    assert len(modules) >= 4
    for path in modules:
        hooks = _hook_functions(path)
        where = path.relative_to(ROOT)
        assert ("compile_model", "compile") in hooks, f"{where} does not implement compile so"
        for function, hook in hooks:
            assert hook in hook_specs(), f"{where}: {function} implements no hook ({hook})"
            assert not hasattr(builtins, function), f"{where}: {function} shadows a builtin"


def test_core_readme_names_real_modules_and_true_limitations():
    text = CORE_README.read_text()
    for module in set(re.findall(r"^\| `(ember(?:\.[a-z_]+)+)`", text, re.M)):
        importlib.import_module(module)  # each module the table names exists
    limitations = text.split("## Limitations", 1)[1]
    core = ember.Core()
    claimed = re.search(r"`ENCRYPTION` \(`CACHE_ENCRYPTION_CALLBACKS`\) is implemented by "
                        r"((?:`\w+`(?:,\s+|\s+and\s+)?)+)", limitations)
    assert claimed, "core/README.md no longer says which devices implement ENCRYPTION"
    from ember.contract.device import split_device_name

    # by kind: the page names OPENVINO for OPENVINO.CPU too
    with_encryption = {split_device_name(name)[0] for name in core.available_devices
                       if props.ENCRYPTION in core.get_property(
                           name, props.OPTIMIZATION_CAPABILITIES)}
    assert with_encryption == set(re.findall(r"`(\w+)`", claimed.group(1)))
    from ember.contract.device import AUTO, NOT_OFFERED

    offered = re.search(r"`(\w+)` is the only virtual device \(there is no `(\w+)`, `(\w+)` or "
                        r"`(\w+)`\)", limitations)
    assert offered, "core/README.md no longer says which virtual devices there are"
    assert offered.group(1) == AUTO and set(offered.groups()[1:]) == set(NOT_OFFERED)


def test_the_errors_reference_page_renders_every_error_and_warning():
    """docs/reference/errors.md groups the classes by where they come from, one directive each:
    a class added to ember.errors must be given its place there."""
    import ember.errors

    classes = {name for name, value in vars(ember.errors).items()
               if isinstance(value, type) and value.__module__ == "ember.errors"}
    rendered = set(re.findall(r"^::: ember\.errors\.(\w+)$", ERRORS_PAGE.read_text(), re.M))
    assert rendered == classes, (f"not on the page: {sorted(classes - rendered)}; "
                                 f"not in ember.errors: {sorted(rendered - classes)}")
