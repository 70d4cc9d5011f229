"""A cache or store directory others can write to: links planted in it are not followed, and an
unsigned cache there is reported.

Each planted link points at a directory or file "outside" that must be left exactly as it was.
"""

import os
import warnings

import pytest

import ember
from ember.cache import ModelCache
from ember.cache.kernel_cache import KernelCache
from ember.cache.shared_dir import _warned_shared
from ember.cli.bundle import BundleError, export_bundle, import_bundle
from ember.errors import CacheWarning, PlantedLinkError
from ember.store import confined
from ember.store import models as store
from ember.store.atomic import background
from ember.testing import ppocr_cls_path

DEVICE = "TEMPLATE"


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test is a new process as far as once-per-process warnings go."""
    confined._warned.clear()
    _warned_shared.clear()
    yield
    confined._warned.clear()
    _warned_shared.clear()


@pytest.fixture
def model_path():
    return ppocr_cls_path()  # installed long ago: its digest is remembered (in files/)


@pytest.fixture
def outside(tmp_path):
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "precious.txt").write_bytes(b"the user's own file\n")
    return directory


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def compile_cached(cache_dir, model, config=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = ember.Core().compile_model(model, DEVICE,
                                              {"CACHE_DIR": str(cache_dir), **(config or {})})
    return compiled, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


@pytest.mark.parametrize("planted", ["blobs", "locks", "files"])
def test_a_subdirectory_planted_as_a_link_is_refused_and_nothing_outside_is_written(
        tmp_path, model_path, outside, planted):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / planted).symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    for _ in range(2):  # a miss, then whatever a second start does
        compiled, messages = compile_cached(cache_dir, model_path)
        assert compiled is not None
    background.wait()  # the file digest's memo is written by the background worker
    assert snapshot(outside) == before
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    naming = [m for m in messages + _all_warnings() if str(cache_dir / planted) in m]
    assert naming, "the refused link is named"
    assert (cache_dir / planted).is_symlink()  # left alone, not removed or replaced


def _all_warnings():
    return sorted(confined._warned)


def test_the_link_is_warned_about_once_per_process(tmp_path, model_path, outside):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "blobs").symlink_to(outside, target_is_directory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            ember.Core().compile_model(model_path, DEVICE, {"CACHE_DIR": str(cache_dir)})
    link_warnings = [w for w in caught if "symbolic link" in str(w.message)]
    assert len(link_warnings) == 1
    assert str(cache_dir / "blobs") in str(link_warnings[0].message)


def test_events_log_planted_as_a_link_to_a_file_outside_is_never_appended_to(
        tmp_path, model_path, outside):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    target = outside / "precious.txt"
    (cache_dir / "events.log").symlink_to(target)
    for config in ({}, {"CACHE_SIGNING_KEY": "k"}):
        compile_cached(cache_dir, model_path, config)
        compile_cached(cache_dir, model_path, config)
        ember.cache.stats(cache_dir)  # flushes the deferred hit events too
    assert target.read_bytes() == b"the user's own file\n"
    assert (cache_dir / "events.log").is_symlink()


def test_a_blob_planted_as_a_link_or_a_fifo_is_a_miss_not_a_hang(tmp_path, model_path):
    cache_dir = tmp_path / "cache"
    compile_cached(cache_dir, model_path)
    (entry,) = (cache_dir / "blobs").glob("*.blob")
    elsewhere = tmp_path / "elsewhere.blob"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    mtime = elsewhere.stat().st_mtime - 3600
    os.utime(elsewhere, (mtime, mtime))
    compile_cached(cache_dir, model_path)
    assert str(entry) in confined._warned
    assert elsewhere.stat().st_mtime == mtime  # its last use was not brought forward
    entry.unlink()
    os.mkfifo(entry)  # opening it for reading would block until someone writes
    assert [e.model_name for e in ember.cache.entries(cache_dir)] == ["?"]  # listed, unread
    ((damaged, why),) = ember.cache.verify(cache_dir)
    assert damaged == entry and "symbolic link (or not a plain directory or file)" in why
    compile_cached(cache_dir, model_path)  # a miss; the compile's entry replaces the FIFO
    assert len(confined._warned) == 1  # the same path, named once
    assert entry.is_file()


def test_listing_and_pruning_skip_a_linked_blobs_directory(tmp_path, model_path, outside):
    other_cache = tmp_path / "other"
    compile_cached(other_cache, model_path)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (outside / "garbage.blob").write_bytes(b"not a blob")
    (cache_dir / "blobs").symlink_to(other_cache / "blobs", target_is_directory=True)
    before = snapshot(other_cache / "blobs")
    assert ember.cache.entries(cache_dir) == []
    ember.cache.prune(cache_dir, 0)
    ember.cache.clear(cache_dir)
    assert snapshot(other_cache / "blobs") == before


def test_the_kernel_cache_writes_nothing_through_a_linked_blobs_directory(tmp_path, outside):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "blobs").symlink_to(outside, target_is_directory=True)
    kernels = KernelCache(ModelCache(cache_dir), plugin="ember-gpu", plugin_version="1",
                          device="GPU.0")
    key = kernels.key(b"kernel source")
    built = kernels.get_or_build(key, lambda: ("program", b"BINARY"), lambda payload: "loaded")
    assert built == "program"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert str(cache_dir / "blobs") in confined._warned


def test_a_bundle_is_not_imported_through_a_linked_blobs_directory(tmp_path, model_path,
                                                                   outside):
    source = tmp_path / "source"
    compile_cached(source, model_path)
    bundle = tmp_path / "warm.tar"
    export_bundle(source, bundle)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "blobs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match="symbolic link"):
        import_bundle(cache_dir, bundle)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_the_store_does_not_save_through_a_planted_model_directory(tmp_path, outside,
                                                                   monkeypatch):
    home = tmp_path / "store"
    home.mkdir()
    monkeypatch.setenv(store.HOME_ENV, str(home))
    (home / "ppocr").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PlantedLinkError):
        ember.save_model("ppocr", ppocr_cls_path())
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    (home / ".locations.lock").symlink_to(outside / "precious.txt")
    with pytest.raises(PlantedLinkError):
        ember.set_model_cache("ppocr", ppocr_cls_path())
    (home / ".locations.lock").unlink()
    (home / store.LOCATIONS_FILE).symlink_to(outside / "precious.txt")
    with pytest.raises(store.StoreFileError, match="symbolic link"):
        ember.set_model_cache("ppocr", ppocr_cls_path())
    assert (outside / "precious.txt").read_bytes() == b"the user's own file\n"


def test_the_plugin_index_is_not_written_through_a_planted_link(tmp_path, outside,
                                                                monkeypatch):
    from ember.contract import plugin_index

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv(store.HOME_ENV, str(home))
    (home / plugin_index.INDEX_DIR).symlink_to(outside, target_is_directory=True)
    plugin_index.find_entry_points("ember.devices")
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


# -- an unsigned cache others can write to -----------------------------------------------------


def shared_warnings(cache_dir, model_path, config=None):
    _, messages = compile_cached(cache_dir, model_path, config)
    return [m for m in messages if "chooses the compiled models" in m]


def test_an_unsigned_world_writable_cache_is_warned_about_once(tmp_path, model_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache_dir.chmod(0o777)
    (first,) = shared_warnings(cache_dir, model_path)
    assert "CACHE_SIGNING_KEY" in first and "chmod 700" in first and "777" in first
    assert shared_warnings(cache_dir, model_path) == []  # once per process
    _warned_shared.clear()
    assert shared_warnings(cache_dir, model_path, {"CACHE_SIGNING_KEY": "k"}) == []
    cache_dir.chmod(0o700)
    assert shared_warnings(cache_dir, model_path) == []


def test_an_unsigned_cache_owned_by_another_user_is_warned_about(tmp_path, model_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    if os.getuid() == 0:  # CI runs as root: hand the directory to "nobody"
        os.chown(cache_dir, 65534, 65534)
        cache_dir.chmod(0o777)  # so that root's process may still write (it may anyway)
        (first,) = shared_warnings(cache_dir, model_path)
        assert "owned by another user (uid 65534)" in first
    else:  # a directory of root's that this user can use: /tmp's sticky, world-writable kind
        cache_dir.chmod(0o777)
        (first,) = shared_warnings(cache_dir, model_path)
        assert "can be written by every user" in first
