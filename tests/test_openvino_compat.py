"""``python -m ember.compat.openvino``: unchanged OpenVINO programs, modules and third-party
packages run on Ember, in subprocesses, as ``python`` would run them.

A stand-in ``openvino`` package that fails when imported plays an installed OpenVINO: the runner
must answer every ``openvino`` import before it is looked at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ember.compat.openvino.names import canonical, ember_module
from ember.testing import ppocr_cls_path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "openvino-compat.md"

#: What an installed OpenVINO would be, if the runner let it be imported.
INSTALLED_OPENVINO = 'raise ImportError("the installed OpenVINO was imported, not Ember")\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def environment(*python_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_CACHE")}
    env["PYTHONPATH"] = os.pathsep.join(map(str, python_path))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ember.compat.openvino", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def installed_openvino(tmp_path):
    """A site directory whose ``openvino`` package fails when imported."""
    site = tmp_path / "site"
    write(site / "openvino" / "__init__.py", INSTALLED_OPENVINO)
    write(site / "openvino" / "runtime" / "__init__.py", INSTALLED_OPENVINO)
    return site


def test_the_pages_example_runs_through_the_runner(tmp_path, installed_openvino):
    text = PAGE.read_text()
    program = re.search(r"`classify\.py`:\n\n<!-- docs: file -->\n```python\n(.*?)^```", text,
                        re.S | re.M)
    commands = re.search(r"^```sh\n(MODEL=.*?)^```", text, re.S | re.M)
    assert program and commands, f"{PAGE.name}: the example's classify.py or commands are gone"
    write(tmp_path / "classify.py", program.group(1))
    done = subprocess.run(["bash", "-c", "set -euxo pipefail\n" + commands.group(1)],
                          cwd=tmp_path, env=environment(installed_openvino), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "0 or 180 degrees" in done.stdout


def test_a_script_runs_as_python_runs_it(tmp_path, installed_openvino):
    app = tmp_path / "app"
    write(app / "helpers.py", "GREETING = 'found next to the script'\n")
    script = write(app / "main.py", """\
        import sys

        import ember
        import openvino as ov
        import openvino.runtime as ov_runtime
        import openvino.runtime.properties.hint as hints
        from openvino.properties import hint, streams
        from helpers import GREETING  # sys.path[0] is the script's directory
        from openvino.runtime import *  # noqa: F403 (OpenVINO's older samples do this)
        from openvino.runtime.utils.types import get_dtype

        assert __name__ == "__main__" and sys.modules["__main__"].__file__ == __file__
        print("argv", sys.argv)
        print(GREETING)
        assert ov.Core is ember.Core and ov_runtime.Tensor is ember.Tensor
        assert ov.runtime is ov_runtime and ov.properties.hint is hint
        assert Core is ember.Core and get_dtype(Type.f32) == "float32"  # noqa: F405
        assert "annotations" not in dir() and "PerformanceMode" not in dir()
        assert hints.PerformanceMode.THROUGHPUT == "THROUGHPUT" and streams.Num.AUTO == -1
        assert isinstance(ov.get_version(), str)
        for name in ("Symbol", "no_such_name"):
            try:
                getattr(ov, name)
            except AttributeError as error:
                print("AttributeError:", error)
        try:
            hints.enable_cpu_pinning
        except AttributeError as error:
            print("AttributeError:", error)
        for module in ("openvino.tools.ovc", "openvino.runtime.no_such_module", "openvino.cache"):
            try:
                __import__(module)
            except ImportError as error:
                print("ImportError:", error)
        try:
            from openvino.runtime import OpExtension  # noqa: F401
        except ImportError as error:  # Ember's words, not "cannot import name"
            print("ImportError:", error)

        def fail():
            raise ValueError("the program's own error")

        if sys.argv[1] == "raise":
            fail()
        sys.exit(int(sys.argv[1]))
    """)
    env = environment(installed_openvino)
    done = run([str(script), "5", "--flag"], cwd=tmp_path, env=env)
    assert done.returncode == 5, done.stderr
    assert f"argv {[str(script), '5', '--flag']}" in done.stdout
    assert "found next to the script" in done.stdout
    for name in ("openvino.Symbol", "openvino.no_such_name",
                 "openvino.properties.hint.enable_cpu_pinning", "openvino.tools",
                 "openvino.no_such_module", "openvino.cache", "openvino.OpExtension"):
        assert f"Ember does not implement {name} " in done.stdout, (name, done.stdout)

    failed = run([str(script), "raise"], cwd=tmp_path, env=env)
    assert failed.returncode == 1
    traceback = failed.stderr[failed.stderr.index("Traceback"):]
    frames = re.findall(r'^  File "([^"]+)"', traceback, re.M)
    assert frames == [str(script), str(script)], traceback  # the program's frames, no runner's
    assert traceback.rstrip().endswith("ValueError: the program's own error")

    usage = run([], cwd=tmp_path, env=env)
    assert usage.returncode == 2 and "usage: python -m ember.compat.openvino" in usage.stderr
    missing = run([str(tmp_path / "absent.py")], cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "can't open file" in missing.stderr
    without = subprocess.run([sys.executable, str(script), "0"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert "the installed OpenVINO was imported" in without.stderr  # only the runner changes it


def test_a_third_party_package_and_a_module_run_unchanged(tmp_path, installed_openvino):
    """A package written for OpenVINO that the user cannot edit, run by ``-m`` and imported by
    the user's script."""
    site = tmp_path / "vendor"
    write(site / "ocrlib" / "__init__.py", """\
        import numpy as np
        from openvino.runtime import Core
        import openvino.properties.hint as hints


        class DirectionClassifier:
            def __init__(self, model_path, threads=1):
                core = Core()
                core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
                model = core.read_model(model_path)
                self.compiled = core.compile_model(
                    model=model, device_name="CPU",
                    config={hints.performance_mode: hints.PerformanceMode.LATENCY})
                self.request = self.compiled.create_infer_request()

            def __call__(self, image):
                self.request.infer(inputs=[image])
                return int(np.argmax(self.request.get_output_tensor().data[0]))
    """)
    write(site / "ocrlib" / "cli.py", """\
        import sys

        import numpy as np

        from ocrlib import DirectionClassifier

        if __name__ == "__main__":
            classify = DirectionClassifier(sys.argv[1])
            image = np.zeros((1, 3, 48, 192), np.float32)
            print("argv", sys.argv[1:], "direction", classify(image))
            sys.exit(int(sys.argv[2]))
    """)
    script = write(tmp_path / "user" / "main.py", """\
        import sys

        import numpy as np

        import ember
        from ocrlib import DirectionClassifier

        classify = DirectionClassifier(sys.argv[1], threads=2)
        image = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
        expected = ember.Core().compile_model(sys.argv[1], "CPU")(image)[0][0]
        assert classify(image) == int(np.argmax(expected))
        assert isinstance(classify.compiled, ember.CompiledModel)
        print("same as Ember's own")
    """)
    env = environment(installed_openvino, site)
    model = str(ppocr_cls_path())
    module = run(["-m", "ocrlib.cli", model, "3"], cwd=tmp_path, env=env)
    assert module.returncode == 3, module.stderr
    assert f"argv {[model, '3']} direction" in module.stdout
    user = run([str(script), model], cwd=tmp_path, env=env)
    assert user.returncode == 0, user.stderr
    assert "same as Ember's own" in user.stdout
    absent = run(["-m", "no_such_module"], cwd=tmp_path, env=env)
    assert absent.returncode == 1 and "No module named no_such_module" in absent.stderr


@pytest.mark.parametrize(("name", "module"), [
    ("openvino", "ember"),
    ("openvino.runtime", "ember"),
    ("openvino.properties.hint", "ember.properties.hint"),
    ("openvino.runtime.properties.hint", "ember.properties.hint"),
    ("openvino.preprocess", "ember.preprocess"),
    ("openvino.runtime.opset13", "ember.opset13"),
    ("openvino.cache", None),  # Ember's own module, not one of OpenVINO's names
    ("openvino.runtime.tools.ovc", "ember.tools.ovc"),  # looked for, then not implemented
])
def test_openvino_names_map_to_ember_modules(name, module):
    assert ember_module(name) == module
    if name.startswith("openvino.runtime."):  # openvino.runtime.X is openvino.X
        assert ember_module(name) == ember_module(canonical(name))


def test_embers_own_code_still_reaches_the_installed_openvino(tmp_path):
    """The OPENVINO device drives the installed OpenVINO while the program's ``openvino`` is
    Ember's: ``import_installed`` gives the installed package, whose modules import each other by
    their absolute names."""
    site = tmp_path / "site"
    write(site / "openvino" / "__init__.py", """\
        from openvino._runtime import Core
        KIND = "installed"
    """)
    write(site / "openvino" / "_runtime.py", "class Core:\n    pass\n")
    script = write(tmp_path / "main.py", """\
        import ember
        import openvino as ov
        from ember.compat.openvino import import_installed

        installed = import_installed()
        assert installed.KIND == "installed" and installed.Core is not ember.Core
        assert import_installed() is installed
        import openvino as again
        assert again is ov and ov.Core is ember.Core  # the program's is still Ember's
        print("both")
    """)
    done = run([str(script)], cwd=tmp_path, env=environment(site))
    assert done.returncode == 0 and "both" in done.stdout, done.stderr
