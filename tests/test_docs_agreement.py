"""The docs agree with the code where a test can tell: the plugin page's hook headings are the hook
specs' names and signatures, and each names the types and cache methods its spec documents;
core/README.md's module table names real modules and its limitations match the devices."""

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


def test_core_readme_names_real_modules_and_true_limitations():
    text = CORE_README.read_text()
    for module in set(re.findall(r"^\| `(ember(?:\.[a-z_]+)+)`", text, re.M)):
        importlib.import_module(module)  # each module the table names exists
    limitations = text.split("## Limitations", 1)[1]
    core = ember.Core()
    claimed = re.search(r"`ENCRYPTION` \(`CACHE_ENCRYPTION_CALLBACKS`\) is implemented by "
                        r"((?:`\w+`(?:,\s+|\s+and\s+)?)+)", limitations)
    assert claimed, "core/README.md no longer says which devices implement ENCRYPTION"
    with_encryption = {name for name in core.available_devices if props.ENCRYPTION in
                       core.get_property(name, props.OPTIMIZATION_CAPABILITIES)}
    assert with_encryption == set(re.findall(r"`(\w+)`", claimed.group(1)))
    from ember.contract.device import AUTO, NOT_OFFERED

    offered = re.search(r"`(\w+)` is the only virtual device \(there is no `(\w+)`, `(\w+)` or "
                        r"`(\w+)`\)", limitations)
    assert offered, "core/README.md no longer says which virtual devices there are"
    assert offered.group(1) == AUTO and set(offered.groups()[1:]) == set(NOT_OFFERED)
