"""The template's copy recipe, run literally: the shell block of the section "Start a new device
from the template" in plugins/template/README.md is extracted and run in a scratch checkout, with
the distributions installed from their wheels in a fresh venv (shared with tests/test_wheels.py).
The copy must install, pass the conformance suite and its own tests, and keep nothing of TEMPLATE.
"""

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ember.testing.notes import note
from ember.testing.wheelhouse import checkout_environment

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "plugins" / "template" / "README.md"
SECTION = "## Start a new device from the template"


def recipe():
    """The first ```sh block of the README's section, exactly as written."""
    text = README.read_text()
    assert SECTION in text, f"{README} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert match, f"the section {SECTION!r} of {README} has no ```sh block"
    return match.group(1)


def test_the_recipe_is_what_the_docs_describe():
    commands = recipe()
    assert "plugins/template" in commands and "--ember-device MYDEVICE" in commands
    assert "pip install" in commands


@pytest.fixture(scope="session")
def environment(tmp_path_factory, pytestconfig):
    # The same arguments in tests/test_wheels.py: built once per session.
    env = checkout_environment(ROOT, tmp_path_factory.getbasetemp() / "wheel-environment")
    timings = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in env.timings.items())
    note(pytestconfig, "ember: wheels in a fresh venv", timings)
    return env


def test_a_copy_made_by_the_recipe_passes_the_suite(request, environment, tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "plugins" / "template", checkout / "plugins" / "template",
                    ignore=shutil.ignore_patterns(".pytest_cache"))
    start = time.perf_counter()
    run = subprocess.run(["bash", "-c", "set -euxo pipefail\n" + recipe()], cwd=checkout,
                         env=environment.venv.environ(), capture_output=True, text=True)
    note(request.config, "ember: wheels in a fresh venv",
         f"the template copy recipe: {time.perf_counter() - start:.1f} s")
    output = run.stdout[-6000:] + run.stderr[-6000:]
    assert run.returncode == 0, output
    copy = tmp_path / "ember-mydevice"
    assert (copy / "src" / "ember_mydevice" / "plugin.py").is_file(), output
    leftovers = subprocess.run(["grep", "-rlE", "ember_template|TEMPLATE", "src", "tests",
                                "pyproject.toml"], cwd=copy, capture_output=True, text=True)
    assert leftovers.stdout == "", f"the copy still names the template: {leftovers.stdout}"
    probe = environment.venv.run(
        "-c", "import ember; core = ember.Core(); print(core.available_devices); "
              "print(core.get_versions('MYDEVICE')); print(core.plugin_failures)", cwd=tmp_path)
    devices, versions, failures = probe.stdout.strip().splitlines()
    assert "'MYDEVICE'" in devices and "'TEMPLATE'" in devices, probe.stdout + probe.stderr
    assert "ember-mydevice 0.1.0" in versions and failures == "[]"
