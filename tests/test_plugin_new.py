"""``ember plugin new acme``: the generated package installs, provides ACME, and passes Ember's
conformance suite as generated (its own tests, which run the suite)."""

import os
import subprocess
import sys

import yaml


def ember(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ember.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_a_generated_plugin_installs_and_passes_the_suite(tmp_path):
    made = ember("plugin", "new", "acme", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "ember-acme"
    assert (root / "src" / "ember_acme" / "plugin.py").is_file()
    sources = " ".join(p.read_text() for p in (root / "src").rglob("*.py"))
    assert "TEMPLATE" not in sources and "ember_template" not in sources
    assert 'ACME = "ember_acme.plugin"' in (root / "pyproject.toml").read_text()
    workflow = yaml.safe_load((root / ".github" / "workflows" / "tests.yml").read_text())
    steps = [step.get("run") for step in workflow["jobs"]["conformance"]["steps"]]
    assert 'python -m pip install ".[test]"' in steps and "python -m pytest tests" in steps

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(root)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "-p", "no:randomly", "tests"], cwd=root, env=env,
                         capture_output=True, text=True)
    output = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, output
    assert "failed" not in run.stdout.splitlines()[-1] and " passed" in output
    assert "ACME ppocr-cls" in run.stdout  # the real models ran too


def test_a_name_that_is_not_an_identifier_or_exists_is_refused(tmp_path):
    assert ember("plugin", "new", "Acme-1", "--dir", str(tmp_path), cwd=tmp_path).returncode == 2
    assert ember("plugin", "new", "template", "--dir", str(tmp_path), cwd=tmp_path
                 ).returncode == 2
    (tmp_path / "ember-acme").mkdir()
    taken = ember("plugin", "new", "acme", "--dir", str(tmp_path), cwd=tmp_path)
    assert taken.returncode == 1 and "exists already" in taken.stderr
