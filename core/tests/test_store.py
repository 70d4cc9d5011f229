"""The model store: tfimm's directory precedence, per-model locations across processes, name
validation, name-or-path resolution in Core, and atomic saves. Real files, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import ember
from ember.errors import EmberError, InvalidModelError, ModelNotFoundError
from ember.store import models as store
from ember.testing import mlp, ppocr_cls_path

STORE_ENV = ("EMBER_HOME", "XDG_CACHE_HOME", "EMBER_CACHE_DIR")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A clean process state: no store variables, HOME in tmp_path, no set_dir."""
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store.set_dir(None)
    yield tmp_path / "home"
    store.set_dir(None)


@pytest.fixture
def in_store(home, tmp_path, monkeypatch):
    """EMBER_HOME pointing at tmp_path/store."""
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "store"))
    return tmp_path / "store"


def child_env(**variables):
    env = {k: v for k, v in os.environ.items() if k not in STORE_ENV}
    env.update(variables)
    return env


def in_child(code: str, **variables) -> object:
    """Run ``code`` (which prints one JSON value last) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(**variables), check=True)
    return json.loads(out.stdout.splitlines()[-1])


# -- precedence ----------------------------------------------------------------------------------


def test_default_is_dot_cache_in_home(home):
    assert store.get_dir() == home / ".cache" / "ember"
    assert store.get_dir_origin() == "default"
    assert store.compiled_cache_dir() == home / ".cache" / "ember" / "compiled"


def test_xdg_cache_home_when_set(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert store.get_dir() == tmp_path / "xdg" / "ember"
    assert store.get_dir_origin() == "XDG_CACHE_HOME"


def test_empty_xdg_cache_home_counts_as_unset(home, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert store.get_dir() == home / ".cache" / "ember"


def test_ember_home_beats_xdg(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "ember-home"))
    assert store.get_dir() == tmp_path / "ember-home"
    assert store.get_dir_origin() == "EMBER_HOME"
    monkeypatch.delenv("EMBER_HOME")
    assert store.get_dir() == tmp_path / "xdg" / "ember"  # read on every call


def test_set_dir_beats_environment_and_none_restores_it(home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "ember-home"))
    ember.set_dir(tmp_path / "chosen")
    assert ember.get_dir() == tmp_path / "chosen"
    assert store.get_dir_origin() == "set_dir"
    ember.set_dir(None)
    assert ember.get_dir() == tmp_path / "ember-home"


def test_relative_set_dir_is_made_absolute(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ember.set_dir("relative")
    monkeypatch.chdir(home.parent.parent)
    assert ember.get_dir() == tmp_path / "relative"


@pytest.mark.parametrize("variables, expected", [
    ({}, "home/.cache/ember"),
    ({"XDG_CACHE_HOME": "xdg"}, "xdg/ember"),
    ({"XDG_CACHE_HOME": ""}, "home/.cache/ember"),
    ({"EMBER_HOME": "eh"}, "eh"),
    ({"EMBER_HOME": "eh", "XDG_CACHE_HOME": "xdg"}, "eh"),
])
def test_precedence_in_a_fresh_process(tmp_path, variables, expected):
    env = {k: str(tmp_path / v) if v else "" for k, v in variables.items()}
    found = in_child("import ember; print(__import__('json').dumps(str(ember.get_dir())))",
                     HOME=str(tmp_path / "home"), **env)
    assert Path(found) == tmp_path / expected


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ppocr-cls", "a", "v1.2_b+c", "9lives", "x" * 128])
def test_valid_names(name):
    assert store.validate_model_name(name) == name


@pytest.mark.parametrize("name, reason", [
    ("", "empty"), (".", "relative directory"), ("..", "relative directory"),
    ("../up", "separator"), ("a/b", "separator"), ("a\\b", "separator"),
    ("/etc/passwd", "absolute"), ("model.onnx", ".onnx"), ("compiled", "reserved"),
    (".hidden", "letters"), ("-flag", "letters"), ("with space", "letters"), ("a:b", "letters"),
    ("x" * 129, "128"),
])
def test_invalid_names_are_refused_everywhere(in_store, name, reason):
    for call in (store.validate_model_name, ember.cached_model_path, ember.clear_model_cache,
                 lambda n: ember.set_model_cache(n, "x.onnx"),
                 lambda n: ember.save_model(n, mlp())):
        with pytest.raises(store.ModelNameError, match=reason) as caught:
            call(name)
        assert isinstance(caught.value, ValueError | InvalidModelError | EmberError)
        assert str(caught.value).startswith(f"invalid model name {name!r}")
    assert not in_store.exists() or not any(p.name != ".locations.lock"
                                            for p in in_store.iterdir())


def test_names_and_paths_are_told_apart(in_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "localfile").write_bytes(mlp().SerializeToString())
    assert store.is_model_name("cls")
    for path_like in ("localfile", "sub/cls", "cls.onnx", "CLS.ONNX", Path("cls"), b"bytes"):
        assert not store.is_model_name(path_like)
        assert store.resolve_model_name(path_like) is path_like
    core = ember.Core()
    assert core.read_model("localfile").inputs[0].name == "x"  # an existing path wins
    with pytest.raises(ModelNotFoundError, match=r"model file not found: missing\.onnx"):
        core.read_model("missing.onnx")  # a path, never looked up as a name


# -- saving and looking up -----------------------------------------------------------------------


def test_save_model_copies_a_file_byte_for_byte(in_store):
    target = ember.save_model("cls", ppocr_cls_path())
    assert target == in_store / "cls" / "model.onnx"
    assert target.read_bytes() == ppocr_cls_path().read_bytes()
    assert ember.cached_model_path("cls") == target
    assert store.list_stored_models() == ["cls"]
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]  # no temporary left


@pytest.mark.parametrize("kind", ["Model", "ModelProto", "bytes", "stored name"])
def test_save_model_takes_models_bytes_and_names(in_store, kind):
    proto = mlp(seed=3)
    ember.save_model("source", proto)
    source = {"Model": ember.Core().read_model(proto.SerializeToString()), "ModelProto": proto,
              "bytes": proto.SerializeToString(), "stored name": "source"}[kind]
    target = ember.save_model("copy", source)
    assert onnx.load(str(target)) == proto


def test_save_model_embeds_external_weights(in_store, tmp_path):
    original = tmp_path / "external" / "model.onnx"
    original.parent.mkdir()
    onnx.save_model(mlp(), str(original), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    target = ember.save_model("ext", original)
    (original.parent / "weights.bin").unlink()
    x = np.ones((1, 16), np.float32)
    core = ember.Core()
    expected = core.compile_model(mlp().SerializeToString(), "TEMPLATE")(x)[0]
    assert np.array_equal(core.compile_model("ext", "TEMPLATE")(x)[0], expected)
    assert target.stat().st_size > 2000


def test_save_model_refuses_what_is_not_onnx_and_writes_nothing(in_store, tmp_path):
    with pytest.raises(InvalidModelError):
        ember.save_model("junk", b"not a model")
    with pytest.raises(ModelNotFoundError):
        ember.save_model("junk", tmp_path / "absent.onnx")
    assert ember.cached_model_path("junk") is None
    assert not (in_store / "junk").exists()


def test_save_model_replaces_atomically(in_store):
    ember.save_model("m", mlp(seed=1))
    ember.save_model("m", mlp(seed=2))
    assert onnx.load(str(in_store / "m" / "model.onnx")) == mlp(seed=2)
    assert os.listdir(in_store / "m") == ["model.onnx"]


def test_location_comes_first_then_the_store(in_store, tmp_path):
    ember.save_model("m", mlp(seed=1))
    elsewhere = tmp_path / "elsewhere.onnx"
    elsewhere.write_bytes(mlp(seed=2).SerializeToString())
    ember.set_model_cache("m", elsewhere)
    assert ember.cached_model_path("m") == elsewhere
    assert ember.list_cached_models() == ["m"]
    elsewhere.unlink()  # a location whose file is gone: the store is next
    assert ember.cached_model_path("m") == in_store / "m" / "model.onnx"
    ember.clear_model_cache("m")
    assert ember.list_cached_models() == []
    assert (in_store / "m" / "model.onnx").is_file()  # clearing deletes nothing


def test_a_directory_location_holds_model_onnx(in_store, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "model.onnx").write_bytes(mlp().SerializeToString())
    ember.set_model_cache("d", tmp_path / "dir")
    assert ember.cached_model_path("d") == tmp_path / "dir" / "model.onnx"
    assert ember.Core().read_model("d").inputs[0].shape == ("batch", 16)


def test_clearing_an_unknown_name_is_harmless(in_store):
    ember.clear_model_cache("never-set")
    assert not in_store.exists()  # nothing was created either


def test_core_resolves_names_and_lists_every_place_it_looked(in_store, tmp_path):
    core = ember.Core()
    ember.save_model("cls", ppocr_cls_path())
    compiled = core.compile_model("cls", "TEMPLATE")
    assert compiled.inputs[0].name == "x"
    ember.set_model_cache("gone", tmp_path / "gone.onnx")
    with pytest.raises(ModelNotFoundError) as caught:
        core.read_model("gone")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    for place in (f"a file 'gone' in {Path.cwd()}", str(tmp_path / "gone.onnx"),
                  str(in_store / "gone" / "model.onnx"), "from $EMBER_HOME", "save_model"):
        assert place in message
    with pytest.raises(ModelNotFoundError, match="none set"):
        core.compile_model("never", "TEMPLATE")


def test_locations_file_is_json_and_a_damaged_one_is_reported(in_store, tmp_path):
    ember.set_model_cache("m", tmp_path / "m.onnx")
    document = json.loads((in_store / ".locations.json").read_text())
    assert document == {"version": 1, "locations": {"m": str(tmp_path / "m.onnx")}}
    (in_store / ".locations.json").write_text("{not json")
    with pytest.raises(EmberError, match="is not valid JSON"):
        ember.list_cached_models()


# -- across processes ----------------------------------------------------------------------------


def test_locations_persist_across_processes(in_store, tmp_path):
    model = tmp_path / "mine.onnx"
    model.write_bytes(ppocr_cls_path().read_bytes())
    ember.set_model_cache("mine", model)
    code = ("import json, ember; core = ember.Core();"
            "print(json.dumps([ember.list_cached_models(), str(ember.cached_model_path('mine')),"
            " core.read_model('mine').inputs[0].name]))")
    assert in_child(code, EMBER_HOME=str(in_store)) == [["mine"], str(model), "x"]
    in_child("import ember; ember.clear_model_cache('mine'); print(1)", EMBER_HOME=str(in_store))
    assert ember.list_cached_models() == []
    assert model.is_file()


def test_concurrent_writers_lose_no_location(in_store, tmp_path):
    code = "import sys, ember; ember.set_model_cache(sys.argv[1], sys.argv[1] + '.onnx')"
    processes = [subprocess.Popen([sys.executable, "-c", code, f"m{i}"], cwd=tmp_path,
                                  env=child_env(EMBER_HOME=str(in_store))) for i in range(4)]
    assert [p.wait() for p in processes] == [0] * 4
    assert ember.list_cached_models() == ["m0", "m1", "m2", "m3"]
    assert ember.cached_model_path("m0") is None  # the files do not exist


def test_ember_store_hands_on_the_model_store_when_first_used():
    """``ember.store`` is the model store's public face (``find_model``, ``get_dir_origin``, ...
    as the docs name them) over ``ember.store.models``; the store room's other modules, on every
    warm start's path, do not import the model store with them."""
    public = sorted(name for name, value in vars(store).items() if not name.startswith("_")
                    and getattr(value, "__module__", None) == store.__name__)
    assert public and set(public) <= set(ember.store.__all__)
    assert all(getattr(ember.store, name) is getattr(store, name) for name in ember.store.__all__)
    assert not hasattr(ember.store, "write_inside")  # the room's, not the model store's
    code = ("import sys, ember.store.atomic, ember.store.paths, ember.store.blob; "
            "print('ember.store.models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
