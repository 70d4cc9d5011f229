"""Finding the ``ember.devices`` entry points without scanning every installed distribution.

``importlib.metadata.entry_points()`` reads the metadata of every distribution on ``sys.path`` and
imports ``email`` to do it: tens of milliseconds on every start, most of a warm start's budget.
The answer only changes when the environment does, so it is kept in a small index::

    <ember.get_dir()>/.plugins/<environment id>.json

The index is valid while its *fingerprint* matches: Ember's version, the metadata directories
(``*.dist-info``, ``*.egg-info``) in every directory on ``sys.path``, and every distribution's
``entry_points.txt`` (not only the plugins': a distribution reinstalled at the same version with a
new entry point keeps its directory's name, and one may gain the file in place). Installing,
upgrading or removing a distribution adds, renames or removes a metadata directory or changes that
file, so the next start rebuilds the index. Checking costs a stat per ``sys.path`` entry and per
distribution: only a directory whose modification time changed (a script's folder where the
application writes its logs, say) is listed again to compare its metadata names. A directory
modified within :data:`RACY_SECONDS` of the scan is not trusted (git's racy-file rule): the scan's
result is used but not written.

The index says which modules to import, so it is only read when it belongs to this user and
nobody else can write it (like ``~/.ssh``); anything unexpected in it means "scan again". It is
JSON, parsed and validated, never evaluated. ``EMBER_PLUGIN_INDEX=0`` switches it off. Whatever
the index, the file system or ``sys.path`` hold (names that are not UTF-8, a deleted working
directory), finding plugins never fails because of the index: it falls back to a scan.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from typing import Any

from ember._version import __version__
from ember.common import checksum
from ember.common.log import get_logger
from ember.common.record import Record

log = get_logger("ember.plugins")

INDEX_ENV = "EMBER_PLUGIN_INDEX"
INDEX_DIR = ".plugins"
INDEX_VERSION = 1
#: A directory modified this recently may change again within its timestamp's granularity.
RACY_SECONDS = 2.0
_MAX_INDEX_BYTES = 1 << 20
# "package.module" or "package.module:object.attribute", optionally with extras ("[extra]"), as
# the entry-point specification writes them (importlib.metadata.EntryPoint's pattern).
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[[\w.,\s-]*\]\s*)?")
_FIELDS = {"name": str, "value": str, "distribution": (str, type(None)),
           "version": (str, type(None)), "metadata_dir": (str, type(None)),
           "problem": (str, type(None)), "notes": list}  # notes: a JSON array, a tuple once read


class EntryPointRecord(Record):
    """One entry point of the group, with what its distribution's metadata says about it.

    ``problem`` is why it must not be loaded (its ``ember`` requirement excludes this Ember);
    ``notes`` are things its author should fix that do not stop it (no upper bound on ember).
    """

    _fields = ("name", "value", "distribution", "version", "metadata_dir", "problem", "notes")
    __slots__ = _fields

    def __init__(self, name: str, value: str, distribution: str | None = None,
                 version: str | None = None, metadata_dir: str | None = None,
                 problem: str | None = None, notes: tuple[str, ...] = ()) -> None:
        self.name = name
        self.value = value
        self.distribution = distribution
        self.version = version
        self.metadata_dir = metadata_dir
        self.problem = problem
        self.notes = notes

    @property
    def module(self) -> str:
        match = _VALUE.fullmatch(self.value)
        return match["module"] if match else self.value.partition(":")[0].strip()

    def load(self) -> object:
        """Import the entry point's module and return the object it names (extras, such as
        ``module:object [extra]``, name optional dependencies: they are not imported)."""
        import importlib

        match = _VALUE.fullmatch(self.value)
        attributes = (match["attr"] or "") if match else self.value.partition(":")[2]
        loaded: object = importlib.import_module(self.module)
        for attribute in filter(None, attributes.split(".")):
            loaded = getattr(loaded, attribute)
        return loaded


def find_entry_points(group: str) -> list[EntryPointRecord]:
    """The group's entry points, from the index when it is still valid, else from a scan."""
    if os.environ.get(INDEX_ENV, "1") in ("0", "off", "false", "no"):
        return _scan(group)
    try:
        path = _index_path(group)
        records = _read_index(path, group)
    except Exception as exc:  # the index only saves time: never a reason to find no plugins
        log.debug("plugin index not used: %s", exc)
        return _scan(group)
    if records is not None:
        return records
    records = _scan(group)
    try:
        _write_index(path, group, records)
    except Exception as exc:
        log.debug("plugin index not written: %s", exc)
    return records


# -- the index file ------------------------------------------------------------------------------


def _index_path(group: str) -> str:
    from ember.store.paths import store_dir

    environment = json.dumps([group, sys.executable, sys.prefix, _search_path()])
    return os.path.join(store_dir()[0], INDEX_DIR,
                        f"{checksum.hexdigest(environment.encode())[:32]}.json")


def _fingerprint(records: list[EntryPointRecord]) -> list[list[Any]]:
    """What must not have changed for the index to hold: ``[place, mtime_ns, names]`` for every
    sys.path directory (``names``: a digest of its metadata directories' names, so that a
    distribution added or removed is seen) and for each plugin's entry_points.txt (edited in
    place; ``names`` is None)."""
    fingerprint = [[place, _mtime_ns(place), _metadata_names(place)] for place in _search_path()]
    seen = set()
    for place in _search_path():
        for name in sorted(_metadata_dirs(place)):
            entry_points = os.path.join(place, name, "entry_points.txt")
            seen.add(entry_points)
            fingerprint.append([entry_points, _mtime_ns(entry_points), None])
    for record in records:  # a plugin found somewhere else (a .pth file's directory, say)
        if record.metadata_dir:
            place = os.path.join(record.metadata_dir, "entry_points.txt")
            if place not in seen:
                fingerprint.append([place, _mtime_ns(place), None])
    return fingerprint


def _still_valid(fingerprint: Any) -> bool:
    """Whether a stored fingerprint still holds, without listing unchanged directories."""
    if not isinstance(fingerprint, list):
        return False
    places = [entry[0] for entry in fingerprint  # os.stat takes an int as a descriptor
              if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)]
    search = _search_path()
    if len(places) != len(fingerprint) or places[:len(search)] != search:
        return False
    for place, mtime, names in fingerprint:
        if _mtime_ns(place) != mtime and (names is None or _metadata_names(place) != names):
            return False
    return True


def _metadata_dirs(place: str) -> list[str]:
    try:
        return [entry for entry in os.listdir(place)
                if entry.endswith((".dist-info", ".egg-info"))]
    except (OSError, ValueError):
        return []


def _metadata_names(place: str) -> str | None:
    if not os.path.isdir(place):
        return None
    names = sorted(os.fsencode(name) for name in _metadata_dirs(place))  # any bytes a name has
    return checksum.hexdigest(b"\0".join(names))


def _search_path() -> list[str]:
    """``sys.path`` with ``""`` (the working directory, for ``python -c``) spelled out; a
    working directory that was deleted stays ``""`` (nothing can be imported from it)."""
    return [entry or _working_directory() for entry in sys.path if isinstance(entry, str)]


def _working_directory() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def _mtime_ns(place: str) -> int | None:
    try:
        return os.stat(place).st_mtime_ns if place else None
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        return None


def _read_index(path: str, group: str) -> list[EntryPointRecord] | None:
    """The index's records, or None when it is absent, stale, foreign or malformed."""
    try:
        with open(path, "rb") as index_file:
            stat = os.fstat(index_file.fileno())
            if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
                log.debug("ignoring %s: not owned by this user or writable by others", path)
                return None
            document = json.loads(index_file.read(_MAX_INDEX_BYTES))
        if (not isinstance(document, dict) or document.get("version") != INDEX_VERSION
                or document.get("ember") != __version__ or document.get("group") != group):
            return None
        records = [_record(entry) for entry in document["entry_points"]]
        return records if _still_valid(document["fingerprint"]) else None
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None


def _record(entry: Any) -> EntryPointRecord:
    if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
        raise ValueError("not an entry-point record")
    for name, kind in _FIELDS.items():
        if not isinstance(entry[name], kind):
            raise ValueError(f"{name} has the wrong type")
    if not _VALUE.fullmatch(entry["value"]) or not all(isinstance(n, str) for n in entry["notes"]):
        raise ValueError("malformed entry point")
    return EntryPointRecord(**{**entry, "notes": tuple(entry["notes"])})


def _write_index(path: str, group: str, records: list[EntryPointRecord]) -> None:
    fingerprint = _fingerprint(records)
    racy = time.time_ns() - int(RACY_SECONDS * 1e9)
    for entry in fingerprint:
        # A directory that just changed may change again within the same mtime unseen: store no
        # mtime for it, so that every read compares its metadata names (one listdir). Skipping
        # the write instead would cost every start a scan while the directory keeps changing (a
        # script's folder that also holds its logs or outputs, /tmp for `python -c`).
        if entry[2] is not None and entry[1] is not None and entry[1] > racy:
            entry[1] = None
    newest = max((mtime for _, mtime, names in fingerprint if names is None and mtime is not None),
                 default=0)
    if newest > racy:
        return  # an entry_points.txt that just changed may change again unseen: scan next time
    document = {"version": INDEX_VERSION, "ember": __version__, "group": group,
                "fingerprint": fingerprint, "entry_points": [r._asdict() for r in records]}
    from ember.store.atomic import write_inside

    # The index only saves time: an unwritable directory costs the next start a scan, no more.
    with contextlib.suppress(OSError):
        write_inside(os.path.dirname(os.path.dirname(path)), (INDEX_DIR,),
                     os.path.basename(path), json.dumps(document).encode())


# -- the scan ------------------------------------------------------------------------------------


def _scan(group: str) -> list[EntryPointRecord]:
    """Read every distribution's metadata (importlib.metadata): the slow, authoritative way."""
    from importlib.metadata import entry_points

    records: list[EntryPointRecord] = []
    for entry_point in entry_points(group=group):
        dist = entry_point.dist
        if dist is None:
            records.append(EntryPointRecord(entry_point.name, entry_point.value))
            continue
        metadata_dir = getattr(dist, "_path", None)  # PathDistribution's folder, when on disk
        problem, notes = _check_ember_requirement(dist.metadata["Name"], dist.requires or [])
        records.append(EntryPointRecord(
            entry_point.name, entry_point.value, dist.metadata["Name"], dist.version,
            str(metadata_dir) if metadata_dir is not None else None, problem, tuple(notes)))
    return records


def _check_ember_requirement(distribution: str,
                             requires: list[str]) -> tuple[str | None, list[str]]:
    """Why a plugin's ``ember`` requirement excludes this Ember (or None), and notes for its
    author: a requirement without an upper bound promises to work with every future Ember."""
    from packaging.requirements import InvalidRequirement, Requirement

    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.name != "ember" or requirement.marker:
            continue
        if not requirement.specifier.contains(__version__, prereleases=True):
            return (f"it requires ember{requirement.specifier}, and this is ember {__version__}: "
                    f"install a version of {distribution} made for this Ember"), []
        if not any(spec.operator in ("<", "<=", "==", "~=", "===")
                   for spec in requirement.specifier):
            return None, [f"its requirement ember{requirement.specifier or ''} has no upper "
                          f"bound: declare the Ember versions it was tested with "
                          f"(e.g. ember>=0.1,<0.2)"]
        return None, []
    return None, [f"{distribution} does not declare which ember versions it works with "
                  f"(add e.g. ember>=0.1,<0.2 to its dependencies)"]
