"""The entry-point index, in this process: ``sys.path`` is a folder of our own laid out as pip
lays out distributions, the store a temporary ``EMBER_HOME``, and the group one no installed
distribution uses, so that every scan and every index is the test's own. What each check of an
index read back refuses, what makes it stale, and what a scan says about a plugin's ``ember``
requirement. (test_plugin_loading.py tries the same end to end, in fresh interpreters.)"""

import importlib.metadata  # noqa: F401  (before sys.path is replaced by the test's folder)
import json
import os
import sys
import time
from pathlib import Path

import packaging.requirements  # noqa: F401  (the scan imports it)
import pytest

from ember._version import __version__
from ember.common import checksum
from ember.contract import plugin_index
from ember.contract.plugin_index import EntryPointRecord

GROUP = "ember.index_tests"


def install(site: Path, distribution: str, module: str, names: list[str],
            requires: str | None = "ember>=0.1,<0.2", version: str = "1.0",
            suffix: str = ".dist-info") -> Path:
    """A distribution's metadata as pip writes it, with ``names`` in GROUP."""
    info = site / f"{module}-{version}{suffix}"
    info.mkdir(parents=True)
    requirement = f"Requires-Dist: {requires}\n" if requires else ""
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\n"
                                   f"Version: {version}\n{requirement}")
    lines = "".join(f"{name} = {module}:Plugin\n" for name in names)
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")
    backdate(info / "entry_points.txt", info)
    return info


def backdate(*paths: Path, seconds: float = 60) -> None:
    """Older than the racy window, as a later start sees a change."""
    for path in paths:
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setattr(sys, "path", [str(folder)])
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(plugin_index.INDEX_ENV, raising=False)
    return folder


@pytest.fixture
def scans(monkeypatch):
    """The groups scanned (an index that answered scans nothing)."""
    done: list[str] = []
    scan = plugin_index._scan
    monkeypatch.setattr(plugin_index, "_scan", lambda group: done.append(group) or scan(group))
    return done


def index_file() -> Path:
    return Path(plugin_index._index_path(GROUP))


def names(records) -> list[str]:
    return sorted(r.name for r in records)


def test_the_index_answers_the_second_start_with_the_first_ones_records(site, scans):
    install(site, "ember-first", "ember_first", ["FIRST", "OTHER"])
    backdate(site)
    first = plugin_index.find_entry_points(GROUP)
    assert names(first) == ["FIRST", "OTHER"] and scans == [GROUP]
    (record,) = [r for r in first if r.name == "FIRST"]
    assert record == EntryPointRecord(
        "FIRST", "ember_first:Plugin", "ember-first", "1.0",
        str(site / "ember_first-1.0.dist-info"), None, ())
    assert index_file().exists()
    document = json.loads(index_file().read_text())
    assert (document["version"], document["ember"], document["group"]) == (1, __version__, GROUP)
    again = plugin_index.find_entry_points(GROUP)
    assert again == first and scans == [GROUP]  # the index answered
    assert type(again[0].notes) is tuple


@pytest.mark.parametrize("value", ["0", "off", "false", "no"])
def test_the_index_can_be_switched_off(site, scans, monkeypatch, value):
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    monkeypatch.setenv(plugin_index.INDEX_ENV, value)
    for _ in range(2):
        assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]
    assert scans == [GROUP, GROUP] and not index_file().exists()
    monkeypatch.setenv(plugin_index.INDEX_ENV, "1")
    for _ in range(2):
        assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]
    assert scans == [GROUP] * 3


def test_each_group_and_search_path_has_its_own_index(site):
    paths = {plugin_index._index_path(group) for group in (GROUP, GROUP + "2")}
    sys.path.append(str(site.parent))
    paths.add(plugin_index._index_path(GROUP))
    assert len(paths) == 3
    for path in paths:
        assert Path(path).parent == site.parent / "home" / ".plugins"
        assert len(Path(path).stem) == 32 and Path(path).suffix == ".json"


def test_a_distribution_added_removed_or_edited_makes_the_index_stale(site, scans):
    first = install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    plugin_index.find_entry_points(GROUP)
    second = install(site, "ember-second", "ember_second", ["SECOND"])
    backdate(site)  # an older change: the folder's names give it away, not only its mtime
    assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST", "SECOND"]
    assert len(scans) == 2
    (first / "entry_points.txt").unlink()
    first.rename(site / "ember_first-2.0.dist-info")  # an upgrade: another folder name
    backdate(site)
    assert names(plugin_index.find_entry_points(GROUP)) == ["SECOND"]
    assert len(scans) == 3
    (second / "entry_points.txt").write_text(f"[{GROUP}]\nTHIRD = ember_second:Plugin\n")
    backdate(second / "entry_points.txt", seconds=30)  # not the mtime it had when indexed
    assert names(plugin_index.find_entry_points(GROUP)) == ["THIRD"]
    assert len(scans) == 4
    assert names(plugin_index.find_entry_points(GROUP)) == ["THIRD"] and len(scans) == 4


def test_a_folder_whose_files_change_keeps_its_index(site, scans):
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    plugin_index.find_entry_points(GROUP)
    (site / "application.log").write_text("a line\n")
    backdate(site, seconds=30)  # another mtime, the same metadata names
    assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"] and len(scans) == 1


def test_a_folder_that_just_changed_is_indexed_without_its_mtime(site, scans):
    install(site, "ember-first", "ember_first", ["FIRST"])
    (site / "application.log").write_text("now\n")  # the folder changed just now
    plugin_index.find_entry_points(GROUP)
    fingerprint = json.loads(index_file().read_text())["fingerprint"]
    assert fingerprint[0] == [str(site), None, plugin_index._metadata_names(str(site))]
    (entry_points,) = [e for e in fingerprint if e[0].endswith("entry_points.txt")]
    assert entry_points[1] == os.stat(entry_points[0]).st_mtime_ns and entry_points[2] is None
    assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"] and len(scans) == 1
    # an older folder keeps its mtime in the index
    index_file().unlink()
    backdate(site, seconds=3)
    plugin_index.find_entry_points(GROUP)
    fingerprint = json.loads(index_file().read_text())["fingerprint"]
    assert fingerprint[0][1] == os.stat(site).st_mtime_ns


def test_an_entry_points_file_changed_within_two_seconds_leaves_no_index(site, scans):
    info = install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    os.utime(info / "entry_points.txt")  # just now
    plugin_index.find_entry_points(GROUP)
    assert not index_file().exists()
    os.utime(info / "entry_points.txt", ns=(0, time.time_ns() - 1_500_000_000))
    plugin_index.find_entry_points(GROUP)
    assert not index_file().exists()
    os.utime(info / "entry_points.txt", ns=(0, time.time_ns() - 2_500_000_000))
    plugin_index.find_entry_points(GROUP)
    assert index_file().exists()


@pytest.mark.parametrize(("age", "kept"), [(1.5, False), (2.5, True)])
def test_a_folder_changed_within_two_seconds_is_indexed_without_its_mtime(site, age, kept):
    install(site, "ember-first", "ember_first", ["FIRST"])
    os.utime(site, ns=(0, time.time_ns() - int(age * 1e9)))
    plugin_index.find_entry_points(GROUP)
    (folder, *_) = json.loads(index_file().read_text())["fingerprint"]
    assert folder[1] == (os.stat(site).st_mtime_ns if kept else None)


def test_an_egg_info_and_a_plugin_outside_the_search_path_are_fingerprinted(site, tmp_path):
    egg = install(site, "ember-egg", "ember_egg", ["EGG"], suffix=".egg-info")
    (site / "notes.txt-info").mkdir()  # not metadata
    assert plugin_index._metadata_dirs(str(site)) == [egg.name]
    elsewhere = install(tmp_path / "elsewhere", "ember-far", "ember_far", ["FAR"])
    records = [EntryPointRecord("FAR", "ember_far:Plugin", "ember-far", "1.0", str(elsewhere)),
               EntryPointRecord("EGG", "ember_egg:Plugin", "ember-egg", "1.0", str(egg)),
               EntryPointRecord("NONE", "x:Plugin")]
    fingerprint = plugin_index._fingerprint(records)
    places = [entry[0] for entry in fingerprint]
    assert places == [str(site), str(egg / "entry_points.txt"),
                      str(elsewhere / "entry_points.txt")]
    assert fingerprint[2] == [places[2], os.stat(places[2]).st_mtime_ns, None]
    assert plugin_index._still_valid(fingerprint)
    os.utime(elsewhere / "entry_points.txt", ns=(0, 10**9))
    assert not plugin_index._still_valid(fingerprint)


def test_a_stored_fingerprint_is_checked_entry_by_entry(site):
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    good = plugin_index._fingerprint([])
    assert plugin_index._still_valid(good)
    for bad in ({}, "x", None, [good[1]], [[str(site), 1], *good[1:]],
                [[3, good[0][1], good[0][2]], *good[1:]], [good[1], good[0]],
                [[str(site) + "x", *good[0][1:]], *good[1:]]):
        assert not plugin_index._still_valid(bad), bad
    # a folder with another mtime: valid while its metadata names are the same, and only then
    assert plugin_index._still_valid([[str(site), 1, good[0][2]], *good[1:]])
    assert not plugin_index._still_valid([[str(site), 1, "0" * 64], *good[1:]])
    # an entry_points.txt (no names) with another mtime is stale
    assert not plugin_index._still_valid([good[0], [good[1][0], 1, None]])
    sys.path.append(str(site.parent))
    assert not plugin_index._still_valid(good)  # another search path


def test_metadata_names_are_a_digest_of_the_sorted_names(site, tmp_path):
    assert plugin_index._metadata_names(str(tmp_path / "missing")) is None
    assert plugin_index._metadata_names(str(site / "x.dist-info")) is None
    empty = checksum.hexdigest(b"")
    assert plugin_index._metadata_names(str(site)) == empty
    install(site, "b", "b", ["B"])
    install(site, "a", "a", ["A"], suffix=".egg-info")
    assert plugin_index._metadata_names(str(site)) == checksum.hexdigest(
        b"a-1.0.egg-info\0b-1.0.dist-info")
    assert plugin_index._metadata_dirs(str(tmp_path / "missing")) == []
    assert plugin_index._metadata_dirs("bad\0name") == []


def test_the_search_path_spells_out_the_working_directory(site, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sys.path[:] = ["", str(site), Path("/x"), b"/bytes"]
    assert plugin_index._search_path() == [str(tmp_path), str(site)]
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert plugin_index._search_path() == ["", str(site)]
    assert plugin_index._mtime_ns("") is None
    assert plugin_index._mtime_ns(str(tmp_path / "missing")) is None
    assert plugin_index._mtime_ns("bad\0name") is None
    assert plugin_index._mtime_ns(str(site)) == os.stat(site).st_mtime_ns


def indexed(site: Path) -> dict:
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)
    plugin_index.find_entry_points(GROUP)
    return json.loads(index_file().read_text())


def read_back(document) -> list | None:
    index_file().write_text(json.dumps(document))
    return plugin_index._read_index(str(index_file()), GROUP)


def test_a_valid_index_reads_back_and_a_foreign_one_does_not(site):
    document = indexed(site)
    assert names(read_back(document)) == ["FIRST"]
    for field, value in (("version", 2), ("version", 0), ("ember", "0.0.1"),
                         ("group", "ember.devices")):
        assert read_back({**document, field: value}) is None, field
    for field in ("version", "ember", "group", "entry_points", "fingerprint"):
        assert read_back({k: v for k, v in document.items() if k != field}) is None, field
    assert read_back([document]) is None
    assert read_back({**document, "fingerprint": []}) is None  # another search path
    assert plugin_index.INDEX_VERSION == 1
    assert plugin_index._read_index(str(index_file()) + ".missing", GROUP) is None


def test_an_index_others_can_write_is_ignored(site):
    document = indexed(site)
    path = index_file()
    for mode, trusted in ((0o600, True), (0o644, True), (0o664, False), (0o646, False),
                          (0o622, False), (0o640, True), (0o755, True), (0o711, True),
                          (0o4700, True), (0o620, False), (0o602, False)):
        path.chmod(mode)
        assert (plugin_index._read_index(str(path), GROUP) is not None) is trusted, oct(mode)
    path.chmod(0o600)
    assert read_back(document) is not None


def test_an_index_of_another_user_is_ignored(site, monkeypatch):
    indexed(site)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(index_file()).st_uid + 1)
    assert plugin_index._read_index(str(index_file()), GROUP) is None


def test_an_index_larger_than_its_bound_is_not_read_whole(site):
    document = indexed(site)
    padded = json.dumps(document)[:-1] + ', "padding": "' + "x" * (1 << 20) + '"}'
    index_file().write_text(padded)
    assert plugin_index._read_index(str(index_file()), GROUP) is None
    just = json.dumps(document)[:-1] + ', "p": "'
    just += "x" * ((1 << 20) - len(just) - 2) + '"}'
    assert len(just) == 1 << 20
    index_file().write_text(just)
    assert names(plugin_index._read_index(str(index_file()), GROUP)) == ["FIRST"]


@pytest.mark.parametrize("forgery", [
    {"notes": {"not": "a list"}}, {"notes": [1]}, {"name": 3}, {"value": None},
    {"value": "os; import this"}, {"value": ""}, {"distribution": 1}, {"version": 1.0},
    {"metadata_dir": []}, {"problem": 0}, {"extra": "field"}])
def test_a_forged_record_refuses_the_whole_index(site, forgery):
    document = indexed(site)
    document["entry_points"][0].update(forgery)
    assert read_back(document) is None


def test_a_record_missing_a_field_or_a_list_of_records_missing_refuses_the_index(site):
    document = indexed(site)
    del document["entry_points"][0]["notes"]
    assert read_back(document) is None
    document["entry_points"] = "FIRST"
    assert read_back(document) is None
    document["entry_points"] = ["FIRST"]
    assert read_back(document) is None


def test_records_read_back_with_every_optional_field_empty(site):
    document = indexed(site)
    document["entry_points"] = [{"name": "N", "value": "pkg.mod:obj.attr [extra, other]",
                                 "distribution": None, "version": None, "metadata_dir": None,
                                 "problem": "it requires ember<0", "notes": ["a", "b"]}]
    (record,) = read_back(document)
    assert record == EntryPointRecord("N", "pkg.mod:obj.attr [extra, other]", None, None, None,
                                      "it requires ember<0", ("a", "b"))


def test_a_damaged_index_means_a_scan_never_a_failure(site, scans):
    indexed(site)
    for text in (b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b"", b"{}"):
        index_file().write_bytes(text)
        assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]
    assert len(scans) == 5


def test_an_index_that_cannot_be_located_or_written_costs_a_scan(site, scans, monkeypatch,
                                                                 tmp_path):
    install(site, "ember-first", "ember_first", ["FIRST"])
    backdate(site)

    def no_store():
        raise RuntimeError("no store")

    monkeypatch.setattr(plugin_index, "_index_path", lambda group: no_store())
    assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]
    monkeypatch.undo()
    monkeypatch.setattr(sys, "path", [str(site)])
    (tmp_path / "blocked").write_text("a file where the store should be")
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "blocked"))
    for _ in range(2):
        assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]

    def failing_write(*args):
        raise RuntimeError("cannot write")

    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home2"))
    monkeypatch.setattr(plugin_index, "_write_index", failing_write)
    assert names(plugin_index.find_entry_points(GROUP)) == ["FIRST"]


def test_entry_point_values_name_a_module_and_an_attribute(site):
    (site / "ember_mod.py").write_text("class Plugin:\n    class Inner:\n        pass\n")
    sys.modules.pop("ember_mod", None)
    try:
        for value, module, loaded in (
                ("ember_mod:Plugin", "ember_mod", "Plugin"),
                ("ember_mod : Plugin.Inner", "ember_mod", "Inner"),
                ("ember_mod:Plugin [gpu]", "ember_mod", "Plugin"),
                ("ember_mod [gpu, cpu]", "ember_mod", "ember_mod"),
                ("ember_mod", "ember_mod", "ember_mod")):
            record = EntryPointRecord("X", value)
            assert record.module == module, value
            assert getattr(record.load(), "__name__", None) == loaded, value
        odd = EntryPointRecord("X", " ember_mod:Plugin")  # not the pattern: split at ":"
        assert odd.module == "ember_mod" and odd.load().__name__ == "Plugin"
        odd = EntryPointRecord("X", "ember_mod:Plugin:x")
        assert odd.module == "ember_mod"
        with pytest.raises(AttributeError):
            odd.load()
    finally:
        sys.modules.pop("ember_mod", None)


def test_the_scan_reads_each_distributions_ember_requirement(site):
    install(site, "ember-ok", "ember_ok", ["OK"], requires="ember>=0.1,<0.2")
    install(site, "ember-loose", "ember_loose", ["LOOSE"], requires="ember>=0.1")
    install(site, "ember-old", "ember_old", ["OLD"], requires="ember<0.1")
    install(site, "ember-none", "ember_none", ["NONE"], requires=None)
    records = {r.name: r for r in plugin_index._scan(GROUP)}
    assert set(records) == {"OK", "LOOSE", "OLD", "NONE"}
    assert records["OK"].problem is None and records["OK"].notes == ()
    assert records["LOOSE"].problem is None and records["LOOSE"].notes == (
        "its requirement ember>=0.1 has no upper bound: declare the Ember versions it was "
        "tested with (e.g. ember>=0.1,<0.2)",)
    assert records["OLD"].problem == (
        f"it requires ember<0.1, and this is ember {__version__}: install a version of "
        "ember-old made for this Ember") and records["OLD"].notes == ()
    assert records["NONE"].problem is None and records["NONE"].notes == (
        "ember-none does not declare which ember versions it works with (add e.g. "
        "ember>=0.1,<0.2 to its dependencies)",)
    assert (records["OK"].distribution, records["OK"].version) == ("ember-ok", "1.0")


@pytest.mark.parametrize(("requires", "problem", "notes"), [
    (["ember>=0.1,<0.2"], False, 0),
    (["ember<=9"], False, 0), (["ember==" + __version__], False, 0), (["ember~=0.1"], False, 0),
    (["ember===" + __version__], False, 0),
    (["ember>0.0"], False, 1), (["ember"], False, 1), (["ember!=0.0.1"], False, 1),
    (["ember>9"], True, 0), (["ember<0.1; python_version < '3'"], False, 1),
    (["not a requirement !!", "ember<0.1"], True, 0), (["numpy<3", "ember<0.2"], False, 0),
    (["numpy<3"], False, 1), ([], False, 1),
    (["ember>=0.1,<0.2", "ember<0.1"], False, 0),  # the first ember requirement decides
])
def test_ember_requirements(requires, problem, notes):
    found, found_notes = plugin_index._check_ember_requirement("dist", requires)
    assert (found is not None) is problem and len(found_notes) == notes


def test_an_unconstrained_requirement_is_named_as_written():
    assert plugin_index._check_ember_requirement("d", ["ember"])[1] == [
        "its requirement ember has no upper bound: declare the Ember versions it was tested "
        "with (e.g. ember>=0.1,<0.2)"]


def test_an_index_written_by_this_process_is_owner_only_writable(site):
    indexed(site)
    assert os.stat(index_file()).st_mode & 0o022 == 0
    assert time.time() - os.stat(index_file()).st_mtime < 60


def test_a_prerelease_of_ember_satisfies_the_range_it_falls_in(monkeypatch):
    monkeypatch.setattr(plugin_index, "__version__", "0.2.0.dev1")
    assert plugin_index._check_ember_requirement("d", ["ember>=0.1,<0.3"]) == (None, [])
    problem, _ = plugin_index._check_ember_requirement("d", ["ember>=0.1,<0.2"])
    assert problem is not None and "this is ember 0.2.0.dev1" in problem
