"""The distributions as pip-installable wheels: each builds, declares what it needs, and once
installed (wheels, not the source tree) into a fresh virtual environment, passes the conformance
suite through ``pytest --ember-device``. The environment is built once per session and shared with
tests/test_template_copy.py."""

import time
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ember.testing.notes import note
from ember.testing.wheelhouse import checkout_environment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def environment(tmp_path_factory, pytestconfig):
    # The same arguments in tests/test_template_copy.py: built once per session.
    env = checkout_environment(ROOT, tmp_path_factory.getbasetemp() / "wheel-environment")
    timings = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in env.timings.items())
    note(pytestconfig, "ember: wheels in a fresh venv", timings)
    return env


def wheel_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode() \
            if f"{dist_info}/entry_points.txt" in names else ""
    return names, metadata, entry_points


def test_each_distribution_builds_a_wheel_that_declares_what_it_needs(environment):
    wheels = {wheel_files(w)[1]["Name"]: w for w in environment.wheels}
    assert sorted(wheels) == ["ember", "ember-cpu", "ember-gpu", "ember-openvino", "ember-template"]
    names, _, entry_points = wheel_files(wheels["ember"])
    assert {"ember/py.typed", "ember/testing/device_suite.py",
            "ember/contract/hookspecs.py"} <= set(names)
    assert "[pytest11]" in entry_points and "ember.testing.pytest_plugin" in entry_points
    for name in ("ember-cpu", "ember-gpu", "ember-openvino", "ember-template"):
        names, metadata, entry_points = wheel_files(wheels[name])
        module = name.replace("-", "_")
        assert f"{module}/plugin.py" in names
        assert "[ember.devices]" in entry_points and f"{module}.plugin" in entry_points
        (ember,) = [r for r in map(Requirement, metadata.get_all("Requires-Dist"))
                    if r.name == "ember"]
        assert any(s.operator in ("<", "<=", "~=", "==") for s in ember.specifier), (
            f"{name} requires {ember}: declare the range of ember versions it works with")


def test_installed_wheels_pass_the_suite_in_a_fresh_venv(request, environment, tmp_path):
    venv = environment.venv
    where = venv.run("-c", "import ember, ember_cpu, ember_template; print(ember.__file__); "
                     "print(ember_template.__file__); print(ember_cpu.__file__)", check=True)
    for path in where.stdout.split():
        assert Path(path).is_relative_to(venv.root), f"imported from the source tree: {path}"
    start = time.perf_counter()
    run = venv.run("-m", "pytest", "-p", "no:cacheprovider", "-q", "--ember-device", "TEMPLATE",
                   "--ember-device", "CPU", cwd=tmp_path)
    note(request.config, "ember: wheels in a fresh venv", "pytest --ember-device TEMPLATE "
         f"--ember-device CPU in the venv: {time.perf_counter() - start:.1f} s")
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.strip().splitlines()[-1]


def test_pytest_without_the_option_collects_nothing_of_embers(environment, tmp_path):
    """The pytest11 plugin is inert unless asked: no tests, and no heavy imports."""
    (tmp_path / "test_nothing.py").write_text("def test_one():\n    pass\n")
    run = environment.venv.run("-m", "pytest", "-p", "no:cacheprovider", "-q", cwd=tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout
    probe = ("import sys, pytest; pytest.main(['-q', '--co', '-p', 'no:cacheprovider']); "
             "print(sorted(m for m in ('ember.testing.suite', 'ember.testing.zoo', 'onnxruntime',"
             " 'onnx') if m in sys.modules))")
    run = environment.venv.run("-c", probe, cwd=tmp_path)
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
