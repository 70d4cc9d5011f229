"""What a start loads, how plugins are found (the entry-point index), and who gets a device kind.

Each probe runs in a fresh interpreter, because what matters is what one process imports.
Plugins are laid out on ``PYTHONPATH`` as pip lays them out (a module and a ``.dist-info`` with
its entry point), so that adding or removing one is a real change of the environment.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ember.testing import ppocr_cls_path
from ember.testing.subprocesses import pythonpath

# Modules that must not be imported before a device is named, or for another device's compile.
HEAVY = ("importlib.metadata", "email", "pluggy", "onnx", "onnxruntime", "pyopencl")
OTHER_PLUGINS = ("ember_gpu", "ember_template", "ember_openvino", "openvino", "pyopencl", "onnx")


def probe(code: str, *, env: dict | None = None, site: Path | None = None,
          home: Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON document as its last line."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("EMBER_DISABLE_PLUGINS", "EMBER_DEVICE_PLUGINS",
                                 "EMBER_DEVICE_ALIASES")}
    if site is not None:
        environment["PYTHONPATH"] = pythonpath(site)
    if home is not None:
        environment["EMBER_HOME"] = str(home)
    environment.update(env or {})
    # A working directory of its own, unchanged for a while: `python -c` puts it on sys.path,
    # and the entry-point index does not trust a directory that has just changed.
    cwd = (home or Path(environment.get("EMBER_HOME", "."))).parent / "cwd"
    if not cwd.exists():
        cwd.mkdir(parents=True)
        backdate(cwd)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env=environment, check=False, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


LOADED = """
def loaded(names):
    return sorted(n for n in names if n in sys.modules)
"""


def test_import_ember_and_core_properties_load_nothing_device_specific(tmp_path):
    report = probe(f"""
        import json, sys
        {textwrap.indent(LOADED, "        ").strip()}
        import ember
        after_import = loaded({HEAVY!r})
        core = ember.Core()
        core.set_property({{"CACHE_DIR": {str(tmp_path / "cache")!r},
                            "CACHE_MODE": "OPTIMIZE_SPEED"}})
        value = core.get_property("CACHE_DIR")
        plugins = ("ember_cpu", "ember_gpu", "ember_template")
        print(json.dumps({{"import": after_import, "core": loaded({HEAVY!r} + plugins),
                          "value": value}}))
    """, home=tmp_path / "home")
    assert report["import"] == []
    assert report["core"] == []
    assert report["value"] == str(tmp_path / "cache")


def test_a_cpu_compile_after_a_global_cache_dir_imports_no_other_plugin(tmp_path):
    code = f"""
        import json, sys
        import numpy as np
        {textwrap.indent(LOADED, "        ").strip()}
        import ember as ov
        core = ov.Core()
        core.set_property({{"CACHE_DIR": {str(tmp_path / "cache")!r}}})
        compiled = core.compile_model({str(ppocr_cls_path())!r}, "CPU")
        compiled(np.zeros((1, 3, 48, 192), np.float32))
        print(json.dumps({{"loaded": loaded({(*OTHER_PLUGINS, "importlib.metadata")!r}),
                          "cached": compiled.get_property("LOADED_FROM_CACHE")}}))
    """
    home = tmp_path / "home"
    cold = probe(code, home=home)
    warm = probe(code, home=home)
    assert warm["cached"] and not cold["cached"]
    # The first start scans the entry points; no start parses the model (no rule of the CPU
    # device needs this one's graph: its header and onnxruntime are enough).
    assert set(cold["loaded"]) <= {"importlib.metadata"}
    assert warm["loaded"] == []


# What a warm start may import beyond what the floor (numpy and onnxruntime running the cached
# session) imports: Ember, its CPU plugin, pluggy (the hook calls), blake3 (the checksums) and
# atexit (a hit's event is appended at exit). Not threading (about 1 ms): the locks that let
# threads share a Core and its caches come from _thread, and only a worker thread needs it.
WARM_START_EXTRAS = ("ember", "ember_cpu", "pluggy", "blake3", "_blake3", "atexit")
# Standard modules a warm start used to import for nothing, each one to a few milliseconds:
# pathlib (with urllib.parse and ipaddress), dataclasses, queue, logging, tempfile, shutil.
NOT_ON_THE_WARM_PATH = ("pathlib", "urllib.parse", "ipaddress", "dataclasses", "queue",
                        "logging", "tempfile", "shutil", "filelock", "onnx", "ml_dtypes")
# Ember's own modules that only a miss, a cold compile, a failure or a setting the start does not
# use needs: a hit writes nothing (atomic writes and the background worker), sets no size limit,
# has no plugin failure to record, and the CPU device loads a saved graph without saving one.
# Each module costs a warm start its import, however small.
EMBER_NOT_ON_THE_WARM_PATH = ("ember.store.atomic", "ember.common.sizes", "ember_cpu.saved_graph",
                              "ember_cpu.limits", "ember.store.signing", "ember.cache.records",
                              "ember.cache.remote", "ember.cache.kernel_cache",
                              "ember.contract.plugin_failure")

# The two ways applications start a model: compile a path and call the result (the shortest
# program), and OpenVINO applications' (read the model, look at its ports, compile the Model,
# infer through a request).
CALL_SHAPES = {
    "compile_model(path)": """
        compiled = core.compile_model(MODEL, "CPU")
        compiled(FEEDS)
    """,
    "read_model, ports, compile_model(model)": """
        model = core.read_model(MODEL)
        ports = [(p.get_any_name(), p.get_element_type(), p.get_partial_shape())
                 for p in [*model.inputs, *model.outputs]]
        compiled = core.compile_model(model=model, device_name="CPU")
        request = compiled.create_infer_request()
        request.infer(inputs=list(FEEDS.values()))
        request.get_output_tensor().data
    """,
}


@pytest.mark.parametrize("call", list(CALL_SHAPES))
def test_a_warm_start_imports_no_more_than_the_floor_and_ember(tmp_path, call):
    """A warm start, in either call shape, against the floor's: the modules Ember adds are its
    own, its CPU plugin's, pluggy's and blake3's, and none of the standard ones it once paid
    for; neither onnx nor ml_dtypes (their import costs more than a whole warm start)."""
    home, cache = tmp_path / "home", tmp_path / "cache"
    feeds = "{'x': np.zeros((1, 3, 48, 192), np.float32)}"
    body = textwrap.dedent(CALL_SHAPES[call]).replace("MODEL", repr(str(ppocr_cls_path())))
    start = f"""
        import json, sys
        import numpy as np
        import ember as ov
        FEEDS = {feeds}
        core = ov.Core()
        core.set_property({{"CACHE_DIR": {str(cache)!r}}})
        {textwrap.indent(body, "        ").strip()}
        print(json.dumps({{"modules": sorted(sys.modules),
                          "cached": compiled.get_property("LOADED_FROM_CACHE")}}))
    """
    probe(start, home=home)
    warm = probe(start, home=home)
    assert warm["cached"]
    floor = probe(f"""
        import json, sys
        import numpy as np
        import onnxruntime as ort
        session = ort.InferenceSession({str(ppocr_cls_path())!r},
                                       providers=["CPUExecutionProvider"])
        session.run(None, {feeds})
        print(json.dumps({{"modules": sorted(sys.modules)}}))
    """, home=home)
    added = set(warm["modules"]) - set(floor["modules"])
    foreign = sorted(m for m in added if m.split(".")[0] not in WARM_START_EXTRAS)
    assert foreign == [], f"a warm start imports {foreign} that the floor does not"
    assert sorted(set(NOT_ON_THE_WARM_PATH) & added) == []
    assert sorted(set(EMBER_NOT_ON_THE_WARM_PATH) & added) == []
    if call == "compile_model(path)":  # nothing builds a Model from a path that hits
        assert "ember.model.model" not in added


# A cold start (an empty CACHE_DIR: compile, store the entry, infer) may add the file lock's
# fcntl, gc (the export is timed with the collector held off) and threading (the background
# worker that writes the file digest's memo while the device compiles).
COLD_START_EXTRAS = (*WARM_START_EXTRAS, "fcntl", "gc", "threading")
# What a cold start once paid for: tempfile with shutil, bz2 and lzma (for the optimised graph,
# now saved in memory), queue and heapq (the background worker's queue), and the warm path's.
NOT_ON_THE_COLD_PATH = (*NOT_ON_THE_WARM_PATH, "bz2", "lzma", "heapq")


@pytest.mark.parametrize("call", list(CALL_SHAPES))
def test_a_cold_start_imports_no_more_than_the_floor_and_ember(tmp_path, call):
    """A cold start in either call shape, against the floor's (onnxruntime optimising the file
    and saving the optimised graph): Ember's modules, its CPU plugin's, pluggy, blake3, the
    file lock's fcntl, and none of the standard modules it once imported on this path."""
    home = tmp_path / "home"
    feeds = "{'x': np.zeros((1, 3, 48, 192), np.float32)}"
    body = textwrap.dedent(CALL_SHAPES[call]).replace("MODEL", repr(str(ppocr_cls_path())))
    seeds = f"""
        import json, sys
        import numpy as np
        import ember as ov
        FEEDS = {feeds}
        core = ov.Core()
        core.set_property({{"CACHE_DIR": sys.argv[1]}})
        {textwrap.indent(body, "        ").strip()}
        print(json.dumps({{"modules": sorted(sys.modules),
                          "cached": compiled.get_property("LOADED_FROM_CACHE")}}))
    """
    probe(seeds.replace("sys.argv[1]", repr(str(tmp_path / "first"))), home=home)  # the scan
    cold = probe(seeds.replace("sys.argv[1]", repr(str(tmp_path / "cold"))), home=home)
    assert not cold["cached"]
    assert list((tmp_path / "cold" / "blobs").glob("*.blob"))  # the entry was written
    floor = probe(f"""
        import json, sys
        import numpy as np
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.optimized_model_filepath = {str(tmp_path / "floor.ort")!r}
        options.add_session_config_entry("session.save_model_format", "ORT")
        session = ort.InferenceSession({str(ppocr_cls_path())!r}, options,
                                       providers=["CPUExecutionProvider"])
        session.run(None, {feeds})
        print(json.dumps({{"modules": sorted(sys.modules)}}))
    """, home=home)
    added = set(cold["modules"]) - set(floor["modules"])
    foreign = sorted(m for m in added if m.split(".")[0] not in COLD_START_EXTRAS)
    assert foreign == [], f"a cold start imports {foreign} that the floor does not"
    assert sorted(set(NOT_ON_THE_COLD_PATH) & added) == []


def test_listing_devices_is_where_every_plugin_is_loaded(tmp_path):
    report = probe(f"""
        import json, sys
        {textwrap.indent(LOADED, "        ").strip()}
        import ember
        core = ember.Core()
        devices = core.available_devices
        plugins = ("ember_cpu", "ember_gpu", "ember_template")
        print(json.dumps({{"devices": devices, "loaded": loaded(plugins)}}))
    """, home=tmp_path / "home")
    assert {"CPU", "TEMPLATE"} <= set(report["devices"])
    assert report["loaded"] == ["ember_cpu", "ember_gpu", "ember_template"]


# -- the entry-point index -----------------------------------------------------------------------

PLUGIN = '''
from ember import hookimpl
EMBER_CONTRACT_VERSION = 1

@hookimpl
def list_devices():
    return {devices!r}

@hookimpl
def supported_metrics(device_name):
    if device_name not in {devices!r}:
        return None
    return {{"FULL_DEVICE_NAME": "{module}", "DEVICE_ARCHITECTURE": "any",
            "OPTIMIZATION_CAPABILITIES": ["FP32"], "SUPPORTED_CONFIG_KEYS": {{}}}}
'''


def install(site: Path, distribution: str, module: str, kinds: list[str],
            devices: list[str] | None = None, requires: str = "ember>=0.1,<0.2") -> Path:
    """Lay out a plugin as pip does: its module and a dist-info naming it in ember.devices."""
    site.mkdir(parents=True, exist_ok=True)
    code = PLUGIN.format(devices=devices if devices is not None else kinds, module=module)
    (site / f"{module}.py").write_text(code)
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\n"
                                   f"Version: 1.0\nRequires-Dist: {requires}\n")
    entry_points = "".join(f"{kind} = {module}\n" for kind in kinds)
    (info / "entry_points.txt").write_text(f"[ember.devices]\n{entry_points}")
    backdate(info / "entry_points.txt")
    return info


DEVICES = """
import json, ember
from ember.contract import plugin_index
scans, scan = [], plugin_index._scan
plugin_index._scan = lambda group: scans.append(group) or scan(group)  # did the index answer?
core = ember.Core()
print(json.dumps({"devices": core.available_devices,
                  "failures": [[f.name, f.distribution, f.stage, f.error]
                               for f in core.plugin_failures],
                  "scanned": bool(scans)}))
"""


def backdate(*paths: Path) -> None:
    """Make changes look older than the index's racy window, as a later start would see them."""
    for path in paths:
        os.utime(path, (os.stat(path).st_atime, os.stat(path).st_mtime - 60))


def test_installing_and_removing_a_plugin_is_seen_at_once(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    first = install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    assert "FIRST" in probe(DEVICES, site=site, home=home)["devices"]
    again = probe(DEVICES, site=site, home=home)
    assert "FIRST" in again["devices"] and not again["scanned"]  # the index answered

    second = install(site, "ember-second", "ember_second", ["SECOND"])
    assert {"FIRST", "SECOND"} <= set(probe(DEVICES, site=site, home=home)["devices"])
    shutil.rmtree(first)
    (site / "ember_first.py").unlink()
    devices = probe(DEVICES, site=site, home=home)["devices"]
    assert "FIRST" not in devices and "SECOND" in devices

    # An entry point edited in place (a plugin's metadata rewritten) is seen too.
    backdate(site)
    probe(DEVICES, site=site, home=home)
    (second / "entry_points.txt").write_text("[ember.devices]\nTHIRD = ember_second\n")
    backdate(second / "entry_points.txt")  # an older edit: its mtime alone must give it away
    report = probe(DEVICES, site=site, home=home)
    assert "SECOND" not in report["devices"]
    assert any(f[0] == "THIRD" and "declare only THIRD" in f[3] for f in report["failures"])


def test_a_script_folder_that_changes_does_not_cost_a_scan(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    probe(DEVICES, site=site, home=home)
    (site / "application.log").write_text("a log line\n")  # the folder's mtime changes
    backdate(site)
    report = probe(DEVICES, site=site, home=home)
    assert "FIRST" in report["devices"] and not report["scanned"]


def test_a_script_folder_that_keeps_changing_still_gets_an_index(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "ember-first", "ember_first", ["FIRST"])
    (site / "application.log").write_text("a log line\n")  # changed just now: within the
    probe(DEVICES, site=site, home=home)                    # racy window when the index is made
    (site / "application.log").write_text("another line\n")
    report = probe(DEVICES, site=site, home=home)
    assert "FIRST" in report["devices"] and not report["scanned"]
    install(site, "ember-second", "ember_second", ["SECOND"])  # and a plugin added is still seen
    report = probe(DEVICES, site=site, home=home)
    assert {"FIRST", "SECOND"} <= set(report["devices"]) and report["scanned"]


@pytest.mark.parametrize("forgery", ["garbage", "deep", "wrong types", "other module",
                                     "writable by others", "other Ember", "other format",
                                     "other group"])
def test_a_forged_or_foreign_index_is_ignored(tmp_path, forgery):
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    probe(DEVICES, site=site, home=home)
    (index,) = (home / ".plugins").glob("*.json")
    document = json.loads(index.read_text())
    if forgery == "garbage":
        index.write_bytes(b"\xff\xfe not json")
    elif forgery == "deep":
        index.write_text("[" * 100_000 + "]" * 100_000)
    elif forgery == "wrong types":
        document["entry_points"][0]["notes"] = {"not": "a list"}
        index.write_text(json.dumps(document))
    elif forgery in ("other Ember", "other format", "other group"):
        # well formed, but written by another Ember (or format, or for another entry-point
        # group): its records may not mean what this one reads them as
        field, value = {"other Ember": ("ember", "0.0.1"), "other format": ("version", 999),
                        "other group": ("group", "ember.other")}[forgery]
        document[field] = value
        index.write_text(json.dumps(document))
    elif forgery == "other module":
        for entry in document["entry_points"]:
            entry["value"] = "os; import this"
        index.write_text(json.dumps(document))
    else:
        for entry in document["entry_points"]:
            entry["value"] = "antigravity"
        index.write_text(json.dumps(document))
        index.chmod(0o666)
    report = probe(DEVICES, site=site, home=home)
    assert "FIRST" in report["devices"] and report["scanned"]
    assert report["failures"] == []


def test_a_distribution_reinstalled_with_a_new_entry_point_is_seen(tmp_path):
    """Not a plugin at first (no entry_points.txt), the same name and version again with one:
    the metadata directory's name does not change, its entry points do."""
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "ember-first", "ember_first", ["FIRST"])
    later = install(site, "ember-later", "ember_later", ["LATER"])
    (later / "entry_points.txt").unlink()
    backdate(site, later)
    assert "LATER" not in probe(DEVICES, site=site, home=home)["devices"]
    shutil.rmtree(later)  # pip's reinstall: the directory removed, then made again
    install(site, "ember-later", "ember_later", ["LATER"])
    backdate(site, later)
    assert "LATER" in probe(DEVICES, site=site, home=home)["devices"]
    (later / "entry_points.txt").unlink()  # and in place, the folder's mtime set back
    backdate(site, later)
    assert "LATER" not in probe(DEVICES, site=site, home=home)["devices"]


def test_the_index_never_fails_a_start(tmp_path):
    """A metadata directory whose name is not UTF-8, and a deleted working directory with ""
    on sys.path: both once raised from the index."""
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "ember-first", "ember_first", ["FIRST"])
    os.mkdir(os.fsencode(site) + b"/caf\xe9-1.0.dist-info")
    backdate(site)
    for _ in range(2):  # a scan, then the index
        assert "FIRST" in probe(DEVICES, site=site, home=home)["devices"]
    gone = tmp_path / "gone"
    code = (f"import os, sys; os.mkdir({str(gone)!r}); os.chdir({str(gone)!r}); "
            f"os.rmdir({str(gone)!r}); "
            "sys.path.insert(0, '')\n" + textwrap.dedent(DEVICES))
    for _ in range(2):
        assert "FIRST" in probe(code, site=site, home=home)["devices"]


def test_an_entry_point_with_extras_loads(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    info = install(site, "ember-first", "ember_first", ["FIRST"])
    (info / "entry_points.txt").write_text("[ember.devices]\nFIRST = ember_first [gpu]\n")
    backdate(info / "entry_points.txt", site)
    for _ in range(2):  # a scan, then the index
        report = probe(DEVICES, site=site, home=home)
        assert "FIRST" in report["devices"], report["failures"]


# -- who provides a device kind ------------------------------------------------------------------

COMPILE_CPU = """
import json, ember
from ember.errors import DeviceConflictError
core = ember.Core()
try:
    name = core.get_property("CPU", "FULL_DEVICE_NAME")
    error = None
except DeviceConflictError as exc:
    name, error = None, str(exc)
print(json.dumps({"name": name, "error": error, "failures": [[f.name, f.stage, f.error]
                  for f in core.plugin_failures]}))
"""


def test_a_plugin_cannot_take_a_device_of_a_kind_it_does_not_declare(tmp_path):
    site = tmp_path / "site"
    install(site, "evil-cpu", "aaacpu", ["AAACPU"], devices=["CPU"])
    report = probe(COMPILE_CPU, site=site, home=tmp_path / "home")
    assert report["error"] is None and report["name"] != "aaacpu"  # ember-cpu's CPU
    [failure] = report["failures"]
    assert failure[0] == "AAACPU" and "lists device 'CPU'" in failure[2]


def test_a_contested_kind_names_both_plugins_until_the_user_chooses(tmp_path):
    site, home = tmp_path / "site", tmp_path / "home"
    install(site, "other-cpu", "other_cpu", ["CPU"])
    report = probe(COMPILE_CPU, site=site, home=home)
    assert report["name"] is None
    assert "ember-cpu" in report["error"] and "other-cpu" in report["error"]
    assert "EMBER_DEVICE_PLUGINS=CPU=" in report["error"]
    assert {stage for _, stage, _ in report["failures"]} == {"conflict"}

    chosen = probe(COMPILE_CPU, site=site, home=home,
                   env={"EMBER_DEVICE_PLUGINS": "CPU=other-cpu"})
    assert chosen["name"] == "other_cpu" and chosen["error"] is None
    ours = probe(COMPILE_CPU, site=site, home=home, env={"EMBER_DEVICE_PLUGINS": "CPU=ember_cpu"})
    assert ours["name"] not in (None, "other_cpu")
    disabled = probe(COMPILE_CPU, site=site, home=home, env={"EMBER_DISABLE_PLUGINS": "other-cpu"})
    assert disabled["name"] not in (None, "other_cpu") and disabled["failures"] == []


def test_notes_for_plugin_authors(tmp_path):
    site = tmp_path / "site"
    install(site, "ember-loose", "ember_loose", ["LOOSE"], requires="ember>=0.1")
    (site / "ember_loose.py").write_text(
        (site / "ember_loose.py").read_text().replace("EMBER_CONTRACT_VERSION = 1", ""))
    report = probe("""
        import json, ember
        core = ember.Core()
        core.available_devices
        [info] = [i for i in core.loaded_plugins if i.name == "LOOSE"]
        print(json.dumps(list(info.notes)))
    """, site=site, home=tmp_path / "home")
    assert any("no upper bound" in note for note in report)
    assert any("EMBER_CONTRACT_VERSION = 1" in note for note in report)


# -- what a broken plugin's failure says ---------------------------------------------------------


def test_a_wrong_hook_argument_is_named():
    import ember
    from ember import hookimpl
    from ember.errors import PluginError

    class BadArgs:
        @hookimpl
        def compile(self, model, device, config):
            return None

    core = ember.Core(load_installed_plugins=False)
    with pytest.raises(PluginError) as raised:
        core.register_plugin(BadArgs(), "bad-args")
    assert "'device'" in str(raised.value) and "compile" in str(raised.value)


def test_an_error_in_a_plugin_submodule_says_where(tmp_path):
    site = tmp_path / "site"
    install(site, "ember-deep", "ember_deep", ["DEEP"])
    package = site / "ember_deep_parts"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kernels.py").write_text("x = 1\nraise ValueError('a kernel table is wrong')\n")
    with (site / "ember_deep.py").open("a") as module:
        module.write("\nimport ember_deep_parts.kernels\n")
    report = probe(DEVICES, site=site, home=tmp_path / "home")
    [failure] = report["failures"]
    assert failure[:3] == ["DEEP", "ember-deep", "import"]
    assert "a kernel table is wrong" in failure[3]
    assert f"{package / 'kernels.py'}, line 2" in failure[3]
