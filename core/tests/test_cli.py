"""The ``ember`` command line, every command through a real subprocess of the installed program.

Each test gets its own store (``EMBER_HOME``) and no ``EMBER_CACHE_DIR``. A small plugin site on
``PYTHONPATH`` (a hand-written dist-info with an ``ember.devices`` entry point, as pip would
install it) adds a device that cannot compile (``NotSupportedError``) and a plugin that fails to
import.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ember
import ember.cache  # used as ember.cache.*: not left to whichever test imported it first
from ember.testing import mlp, ppocr_cls_path
from ember.testing.subprocesses import pythonpath

EMBER = [sys.executable, "-m", "ember.cli.main"]
PPOCR_SHAPE = "x=1,3,48,192"

LIMITED_PLUGIN = '''
from ember import hookimpl
from ember.errors import NotSupportedError

@hookimpl
def list_devices():
    return ["LIMITED"]

@hookimpl
def supported_metrics(device_name):
    if device_name == "LIMITED":
        return {"FULL_DEVICE_NAME": "a device that cannot compile yet",
                "DEVICE_ARCHITECTURE": "none", "OPTIMIZATION_CAPABILITIES": ["FP32"]}

@hookimpl
def compile(model, device_name):
    if device_name == "LIMITED":
        raise NotSupportedError("device LIMITED cannot compile yet")
'''


def install_plugin(site: Path, distribution: str, module: str, code: str, kind: str) -> None:
    """Lay out a distribution as pip would: the module and a dist-info with its entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ember.devices]\n{kind} = {module}\n")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_plugin(site, "ember-limited", "ember_limited", LIMITED_PLUGIN, "LIMITED")
    install_plugin(site, "ember-broken", "ember_broken", "import a_module_that_is_missing\n",
                   "BROKEN")
    return site


@pytest.fixture
def home(tmp_path):
    return tmp_path / "store"  # EMBER_HOME


@pytest.fixture
def cli(home, tmp_path):
    """``cli(*args, site=None, status=0, env=None, traceback=False)``: run ember, check its exit
    status and whether it printed a traceback, and return the completed process."""

    def run(*args, site=None, status=0, env=None, traceback=False):
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("EMBER_CACHE_DIR", "XDG_CACHE_HOME", "EMBER_DEBUG")}
        environment.update(EMBER_HOME=str(home), **(env or {}))
        if site is not None:
            environment["PYTHONPATH"] = pythonpath(site)
        result = subprocess.run([*EMBER, *map(str, args)], capture_output=True, text=True,
                                env=environment, cwd=tmp_path, check=False)
        assert result.returncode == status, (result.stdout, result.stderr)
        assert ("Traceback" in result.stderr) == traceback, result.stderr
        return result

    return run


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- the program ---------------------------------------------------------------------------------


def test_the_installed_script_runs(cli):
    script = Path(sys.executable).with_name("ember")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ember, version {ember.__version__}"
    assert all(c in cli("--help").stdout for c in ("devices", "compile", "run", "cache",
                                                   "models", "benchmark"))


def test_errors_are_one_line_unless_debug(cli):
    one_error_line(cli("run", "absent-model", "-d", "CPU", status=1))
    debug = cli("--debug", "run", "absent-model", "-d", "CPU", status=1, traceback=True)
    assert "StoredModelNotFoundError: model 'absent-model' not found" in debug.stderr
    cli("run", "absent-model", "-d", "CPU", status=1, traceback=True, env={"EMBER_DEBUG": "1"})


# -- devices -------------------------------------------------------------------------------------


def test_devices_table_and_json(cli):
    table = cli("devices").stdout
    assert "TEMPLATE" in table and "ember-template 0.1.0" in table
    listing = json.loads(cli("devices", "--json").stdout)
    template = next(d for d in listing["devices"] if d["name"] == "TEMPLATE")
    assert template["plugin"]["distribution"] == "ember-template"
    assert "EXPORT_IMPORT" in template["capabilities"] and template["import_export"]
    assert template["architecture"] == ember.Core().get_property("TEMPLATE",
                                                                 "DEVICE_ARCHITECTURE")
    assert {"CPU", "TEMPLATE"} <= {p["name"] for p in listing["plugins"]}
    assert listing["failures"] == []


def test_devices_shows_failed_plugins_and_why(cli, plugin_site):
    listing = json.loads(cli("devices", "--json", site=plugin_site).stdout)
    assert "LIMITED" in [d["name"] for d in listing["devices"]]
    [failure] = listing["failures"]
    assert failure["distribution"] == "ember-broken" and failure["stage"] == "import"
    assert "a_module_that_is_missing" in failure["error"]
    table = cli("devices", site=plugin_site)
    assert "not loaded: plugin 'BROKEN' (ember-broken) failed at import" in table.stdout
    assert table.stderr == ""


# -- compile -------------------------------------------------------------------------------------


def test_compile_fills_the_default_cache(cli, home):
    first = cli("compile", ppocr_cls_path(), "-d", "TEMPLATE").stdout
    assert f"cached in {home / 'compiled'}" in first
    assert "already in the cache" in cli("compile", ppocr_cls_path(), "-d", "TEMPLATE").stdout
    [entry] = ember.cache.entries(home / "compiled")
    assert entry.device == "TEMPLATE"


def test_compile_writes_a_blob_that_imports(cli, tmp_path):
    out = cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "-o", "cls.blob").stdout
    assert "wrote cls.blob" in out
    core = ember.Core()
    imported = core.import_model((tmp_path / "cls.blob").read_bytes(), "TEMPLATE")
    x = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
    expected = core.compile_model(ppocr_cls_path(), "TEMPLATE")(x)[0]
    assert np.array_equal(imported(x)[0], expected)
    assert not (tmp_path / "store" / "compiled").exists()  # -o alone does not cache


def test_compile_into_a_given_cache_dir(cli, tmp_path):
    cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "--cache-dir", tmp_path / "c")
    assert len(ember.cache.entries(tmp_path / "c")) == 1
    line = one_error_line(cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "--cache-dir",
                              tmp_path / "missing" / "c", status=1))
    assert "does not exist" in line


def test_compile_failures(cli, plugin_site):
    assert "device 'NPU' is not available" in one_error_line(
        cli("compile", ppocr_cls_path(), "-d", "NPU", status=1))
    line = one_error_line(cli("compile", ppocr_cls_path(), "-d", "LIMITED", site=plugin_site,
                              status=3))
    assert "cannot export" in line


# -- run -----------------------------------------------------------------------------------------


def test_run_with_random_inputs_and_a_shape(cli):
    out = cli("run", ppocr_cls_path(), "-d", "TEMPLATE", "--shape", PPOCR_SHAPE).stdout
    assert "on TEMPLATE" in out and "compile" in out and "inference" in out
    assert "(1, 2)" in out and "random (seed 0)" in out
    report = json.loads(cli("run", ppocr_cls_path(), "-d", "CPU", "-s", PPOCR_SHAPE,
                            "--json").stdout)
    [output] = report["outputs"]
    assert output["shape"] == [1, 2] and len(output["values"]) == 2
    assert abs(sum(output["values"]) - 1) < 1e-4  # softmax probabilities
    assert report["inputs"][0]["shape"] == [1, 3, 48, 192] and report["compile_ms"] > 0


@pytest.mark.parametrize("where", ["default", "--cache-dir", "EMBER_CACHE_DIR"])
def test_run_loads_what_compile_cached(cli, home, tmp_path, where):
    """One resolver for the cache directory: ember compile fills the cache ember run reads."""
    args = {"default": [], "--cache-dir": ["--cache-dir", tmp_path / "c"]}.get(where, [])
    env = {"EMBER_CACHE_DIR": str(tmp_path / "e")} if where == "EMBER_CACHE_DIR" else None
    assert "cached in" in cli("compile", ppocr_cls_path(), "-d", "CPU", *args, env=env).stdout
    report = json.loads(cli("run", ppocr_cls_path(), "-d", "CPU", "-s", PPOCR_SHAPE, "--json",
                            *args, env=env).stdout)
    assert report["loaded_from_cache"] is True
    directory = {"default": home / "compiled", "--cache-dir": tmp_path / "c",
                 "EMBER_CACHE_DIR": tmp_path / "e"}[where]
    assert [e.device for e in ember.cache.entries(directory)] == ["CPU"]


def test_run_a_dynamic_batch_defaults_to_one(cli, tmp_path):
    (tmp_path / "mlp.onnx").write_bytes(mlp().SerializeToString())
    report = json.loads(cli("run", "mlp.onnx", "-d", "TEMPLATE", "--json").stdout)
    assert report["inputs"][0]["shape"] == [1, 16]
    assert report["outputs"][0]["shape"] == [1, 10]


def test_run_with_an_input_file_by_stored_name(cli, tmp_path):
    cli("models", "save", "cls", ppocr_cls_path())
    x = np.random.default_rng(5).random((2, 3, 48, 192), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    report = json.loads(cli("run", "cls", "-d", "TEMPLATE", "--input", "x=x.npy",
                            "--json").stdout)
    expected = ember.Core().compile_model(ppocr_cls_path(), "TEMPLATE")(x)[0]
    assert report["path"] == str(tmp_path / "store" / "cls" / "model.onnx")
    assert report["inputs"][0] == {"name": "x", "shape": [2, 3, 48, 192], "dtype": "float32",
                                   "source": "x.npy"}
    assert np.allclose(report["outputs"][0]["max"], expected.max())


def test_run_refuses_pickled_arrays(cli, tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = one_error_line(cli("run", ppocr_cls_path(), "-d", "CPU", "-i", "objects.npy",
                              status=1))
    assert "allow_pickle=False" in line


def test_run_input_errors(cli, plugin_site):
    line = one_error_line(cli("run", ppocr_cls_path(), "-d", "CPU", status=1))
    assert "dynamic dimensions" in line and "--shape x=1,3,N,N" in line
    assert "dimension 1 of x" in one_error_line(
        cli("run", ppocr_cls_path(), "-d", "CPU", "-s", "x=1,4,48,192", status=1))
    assert "not a shape" in cli("run", ppocr_cls_path(), "-d", "CPU", "-s", "x=a,b",
                                status=2).stderr
    assert "no input 'y'" in cli("run", ppocr_cls_path(), "-d", "CPU", "-s", "y=1",
                                 status=2).stderr
    line = one_error_line(cli("run", ppocr_cls_path(), "-d", "LIMITED", "-s", PPOCR_SHAPE,
                              site=plugin_site, status=3))
    assert line == "error: device LIMITED cannot compile yet"


# -- cache ---------------------------------------------------------------------------------------


@pytest.fixture
def warm(cli, tmp_path):
    """A cache directory with PaddleOCR's classifier compiled for TEMPLATE."""
    cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "--cache-dir", tmp_path / "c")
    return tmp_path / "c"


def test_cache_listing_commands(cli, warm):
    listing = json.loads(cli("cache", "ls", "--cache-dir", warm, "--json").stdout)
    [entry] = listing["entries"]
    assert entry["device"] == "TEMPLATE" and entry["model_name"] == ppocr_cls_path().name
    assert entry["key"][:16] in cli("cache", "ls", "--cache-dir", warm).stdout
    stats = json.loads(cli("cache", "stats", "--cache-dir", warm, "--json").stdout)
    assert (stats["writes"], stats["entries"]) == (1, 1)
    assert "writes" in cli("cache", "stats", "--cache-dir", warm).stdout
    assert json.loads(cli("cache", "verify", "--cache-dir", warm, "--json").stdout)[
        "damaged"] == []
    assert "1 entry, all intact" in cli("cache", "verify", "--cache-dir", warm).stdout


def test_cache_commands_default_to_ember_cache_dir_then_the_store(cli, warm, home):
    listing = json.loads(cli("cache", "ls", "--json", env={"EMBER_CACHE_DIR": str(warm)}).stdout)
    assert listing["cache_dir"] == str(warm) and len(listing["entries"]) == 1
    listing = json.loads(cli("cache", "ls", "--json").stdout)
    assert listing == {"cache_dir": str(home / "compiled"), "entries": []}


def test_cache_verify_prune_and_clear(cli, warm):
    [blob_file] = (warm / "blobs").iterdir()
    data = bytearray(blob_file.read_bytes())
    data[-1] ^= 0xFF
    blob_file.write_bytes(bytes(data))
    damaged = json.loads(cli("cache", "verify", "--cache-dir", warm, "--json", status=1).stdout)
    assert "checksum" in damaged["damaged"][0]["problem"]
    out = cli("cache", "prune", "--max-size", "500M", "--cache-dir", warm).stdout
    assert "removed damaged" in out and "0 entries left" in out
    assert "is not a size" in cli("cache", "prune", "--max-size", "lots", status=2).stderr
    cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "--cache-dir", warm)
    assert "removed" in cli("cache", "prune", "--max-size", "1K", "--cache-dir", warm).stdout
    cli("compile", ppocr_cls_path(), "-d", "TEMPLATE", "--cache-dir", warm)
    assert "removed 1 entry" in cli("cache", "clear", "--cache-dir", warm).stdout
    assert ember.cache.entries(warm) == []


def test_cache_export_and_import(cli, warm, tmp_path):
    for bundle in ("warm.tar", "warm.tar.gz"):
        assert "exported 1 entry" in cli("cache", "export", bundle, "--cache-dir", warm).stdout
        with tarfile.open(tmp_path / bundle) as tar:
            assert [m.name for m in tar.getmembers()] == [p.name for p in
                                                          (warm / "blobs").iterdir()]
    other = tmp_path / "other"
    assert "imported 1 entry" in cli("cache", "import", "warm.tar.gz", "--cache-dir",
                                     other).stdout
    assert "1 already there" in cli("cache", "import", "warm.tar", "--cache-dir", other).stdout
    assert ember.cache.verify(other) == []
    core = ember.Core()
    compiled = core.compile_model(ppocr_cls_path(), "TEMPLATE", {"CACHE_DIR": str(other)})
    assert compiled.get_property("LOADED_FROM_CACHE")
    assert "no entries to export" in one_error_line(
        cli("cache", "export", "empty.tar", "--cache-dir", tmp_path / "empty", status=1))


def make_bundle(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def test_cache_import_refuses_anything_but_intact_blobs(cli, warm, tmp_path):
    [blob_file] = (warm / "blobs").iterdir()
    good = blob_file.read_bytes()
    other_key = "0" * 64 + ".blob"
    link = tarfile.TarInfo(blob_file.name)
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    damaged = bytearray(good)
    damaged[-1] ^= 1
    cases = {
        "path": ([(tarfile.TarInfo("../" + blob_file.name), good)], "is not named"),
        "nested": ([(tarfile.TarInfo("blobs/" + blob_file.name), good)], "is not named"),
        "other file": ([(tarfile.TarInfo("notes.txt"), b"hello")], "is not named"),
        "symlink": ([(link, b"")], "not a regular file"),
        "not a blob": ([(tarfile.TarInfo(other_key), b"x" * 100)], "not an intact Ember blob"),
        "damaged": ([(tarfile.TarInfo(blob_file.name), bytes(damaged))], "checksum"),
        "renamed": ([(tarfile.TarInfo(other_key), good)], "not its file name"),
        "one bad among good": ([(tarfile.TarInfo(blob_file.name), good),
                                (tarfile.TarInfo(other_key), good)], "not its file name"),
    }
    target = tmp_path / "target"
    for name, (members, reason) in cases.items():
        bundle = make_bundle(tmp_path / f"{name}.tar", members)
        line = one_error_line(cli("cache", "import", bundle, "--cache-dir", target, status=1))
        assert reason in line, (name, line)
        assert ember.cache.entries(target) == []  # nothing placed, not even the good one
        assert not target.exists() or os.listdir(target / "blobs") == []
    (tmp_path / "plain.txt").write_text("not a tar")
    assert "not a readable cache bundle" in one_error_line(
        cli("cache", "import", tmp_path / "plain.txt", "--cache-dir", target, status=1))


# -- models --------------------------------------------------------------------------------------


def test_models_commands(cli, home, tmp_path):
    empty = json.loads(cli("models", "ls", "--json").stdout)
    assert empty == {"store": {"dir": str(home), "origin": "EMBER_HOME"}, "models": []}
    assert "saved cls" in cli("models", "save", "cls", ppocr_cls_path()).stdout
    assert cli("models", "path", "cls").stdout.strip() == str(home / "cls" / "model.onnx")
    (tmp_path / "mine.onnx").write_bytes(mlp().SerializeToString())
    assert "mine -> " in cli("models", "set", "mine", "mine.onnx").stdout  # relative to cwd
    listing = json.loads(cli("models", "ls", "--json").stdout)["models"]
    assert listing == [
        {"name": "cls", "path": str(home / "cls" / "model.onnx"), "source": "store",
         "exists": True},
        {"name": "mine", "path": str(tmp_path / "mine.onnx"), "source": "location",
         "exists": True},
    ]
    assert "mine" in cli("models", "ls").stdout
    assert "no file was deleted" in cli("models", "clear", "mine").stdout
    assert "no location was set" in cli("models", "clear", "mine").stdout
    assert (tmp_path / "mine.onnx").is_file()
    assert json.loads(cli("models", "ls", "--json").stdout)["models"][0]["name"] == "cls"


def test_models_errors(cli, home):
    set_missing = cli("models", "set", "later", "not-yet.onnx")
    assert "does not exist (yet)" in set_missing.stderr
    line = one_error_line(cli("models", "path", "later", status=1))
    assert "not-yet.onnx (missing)" in line and str(home / "later" / "model.onnx") in line
    assert "path separator" in one_error_line(cli("models", "save", "../x", ppocr_cls_path(),
                                                  status=1))
    assert "absolute path" in one_error_line(cli("models", "path", "/etc/passwd", status=1))
    assert "not a valid ONNX model" in one_error_line(
        cli("models", "save", "x", __file__, status=1))


# -- benchmark -----------------------------------------------------------------------------------


def test_benchmark_table_json_and_plot(cli, tmp_path):
    args = ["benchmark", ppocr_cls_path(), "-d", "TEMPLATE", "--runs", "1", "--infer-runs", "2",
            "-s", PPOCR_SHAPE, "--plot", "times.png", "--json"]
    report = json.loads(cli(*args).stdout)
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["import", "read", "compile", "first_cached", "warm_model",
                           "warm_path", "first_inference", "steady_inference"]
    assert all(s["min_ms"] <= s["median_ms"] <= s["max_ms"] and len(s["samples_ms"]) == 1
               for s in steps.values())
    assert report["notes"] == []  # the warm compiles hit the cache
    # matplotlib is in the development environment, as every extra its commands use (ember[plot])
    assert (tmp_path / "times.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "steady inference (median of 2)" in cli(*args[:-1]).stdout


def test_plot_without_matplotlib_says_what_to_install(tmp_path):
    # An environment without the extra: matplotlib made unimportable in this process only.
    code = ("import sys, runpy; sys.modules['matplotlib'] = None; sys.argv[0] = 'ember'; "
            "runpy.run_module('ember.cli.main', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code, "benchmark", str(ppocr_cls_path()), "-d",
                          "TEMPLATE", "-s", PPOCR_SHAPE, "--plot", "x.png"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "--plot needs matplotlib: pip install 'ember[plot]'" in (
        run.stderr), run.stderr


def test_benchmark_errors(cli):
    assert "dynamic dimensions" in one_error_line(
        cli("benchmark", ppocr_cls_path(), "-d", "TEMPLATE", "--runs", "1", status=1))
    assert "is not available" in one_error_line(
        cli("benchmark", ppocr_cls_path(), "-d", "NPU", status=1))
