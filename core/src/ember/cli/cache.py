"""``ember cache``: list, count, verify, prune and clear a model cache; export and import it.

The directory is ``--cache-dir``, else ``$EMBER_CACHE_DIR``, else ``<ember.get_dir()>/compiled``.
The signing key, for ``verify``, ``export`` and ``import``, is ``$EMBER_CACHE_SIGNING_KEY`` (an
environment variable, never an argument: arguments are visible to every user of the machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ember import cache as model_cache
from ember.cli._common import (
    EXIT_ERROR,
    SizeType,
    cache_dir_option,
    echo_json,
    entries,
    format_size,
    format_time,
    json_option,
    resolve_cache_dir,
    row,
    say,
    show,
    table,
)
from ember.cli.bundle import DEFAULT_MAX_SIZE, export_bundle, import_bundle
from ember.errors import PropertyValueError
from ember.runtime.settings import environment_signing_key
from ember.store.signing import Signer, signer


def _signer() -> Signer | None:
    """The signer of ``$EMBER_CACHE_SIGNING_KEY``, or None; set but empty is an error."""
    try:
        return signer(environment_signing_key())
    except PropertyValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
def cache() -> None:
    """Look after a model cache directory."""


@cache.command("ls")
@cache_dir_option
@json_option
def ls(cache_dir: Path | None, as_json: bool) -> None:
    """List the cached models, least recently used first."""
    directory = resolve_cache_dir(cache_dir)
    found = model_cache.entries(directory)
    if as_json:
        echo_json({"cache_dir": str(directory), "entries": [
            {**e._asdict(), "path": str(e.path)} for e in found]})
        return
    if not found:
        missing = "" if directory.is_dir() else " (the directory does not exist)"
        say(f"no entries in {directory}{missing}")
        return
    listing = table("key", "model", "device", "plugin", "size", "compile ms", "created",
                    "last used", title=str(directory))
    for e in found:
        row(listing, e.key[:16], e.model_name, e.device, f"{e.plugin} {e.plugin_version}",
            format_size(e.size), f"{e.compile_seconds * 1e3:.1f}", format_time(e.created),
            format_time(e.last_used))
    show(listing)
    say(f"{entries(len(found))}, {format_size(sum(e.size for e in found))}")


@cache.command()
@cache_dir_option
@json_option
def stats(cache_dir: Path | None, as_json: bool) -> None:
    """Hits, misses, writes, evictions, damaged entries, bytes and compile time saved."""
    directory = resolve_cache_dir(cache_dir)
    counters = model_cache.stats(directory)._asdict()
    if as_json:
        echo_json({"cache_dir": str(directory), **counters})
        return
    listing = table("counter", "value", title=str(directory))
    for name, value in counters.items():
        if name in ("bytes_read", "bytes_written", "size"):
            value = format_size(value)
        elif name == "compile_seconds_saved":
            value = f"{value:.3f} s"
        row(listing, name.replace("_", " "), value)
    show(listing)


@cache.command()
@cache_dir_option
@json_option
def verify(cache_dir: Path | None, as_json: bool) -> None:
    """Check every entry's checksums; exit status 1 when one is damaged."""
    directory = resolve_cache_dir(cache_dir)
    problems = model_cache.ModelCache(directory).verify(_signer())
    if as_json:
        echo_json({"cache_dir": str(directory),
                   "damaged": [{"path": str(p), "problem": why} for p, why in problems]})
    elif problems:
        for path, why in problems:
            say(f"damaged: {path.name}: {why}", style="red")
        say(f"{entries(len(problems))} damaged; `ember cache prune` removes them")
    else:
        say(f"{entries(len(model_cache.entries(directory)))}, all intact ({directory})")
    if problems:
        sys.exit(EXIT_ERROR)


@cache.command()
@click.option("--max-size", required=True, type=SizeType(),
              help="Keep at most this many bytes (500M, 2G, ...).")
@cache_dir_option
def prune(max_size: int, cache_dir: Path | None) -> None:
    """Remove damaged entries and stale temporary files, then the least recently used entries
    until the cache holds at most --max-size."""
    directory = resolve_cache_dir(cache_dir)
    damaged = model_cache.verify(directory)
    evicted = model_cache.prune(directory, max_size)
    for path, why in damaged:
        say(f"removed damaged {path.name} ({why})")
    for entry in evicted:
        say(f"removed {entry.key[:16]} {entry.model_name} on {entry.device} "
            f"({format_size(entry.size)})")
    left = model_cache.entries(directory)
    say(f"{entries(len(left))} left, {format_size(sum(e.size for e in left))}")


@cache.command()
@cache_dir_option
def clear(cache_dir: Path | None) -> None:
    """Remove every entry, lock, remembered checksum and statistic (other files stay)."""
    directory = resolve_cache_dir(cache_dir)
    found = model_cache.entries(directory)
    model_cache.clear(directory)
    say(f"removed {entries(len(found))} ({format_size(sum(e.size for e in found))}) "
        f"from {directory}")


@cache.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@cache_dir_option
def export(file: Path, cache_dir: Path | None) -> None:
    """Write every intact entry into FILE, a tar of <key>.blob files (.tar.gz: compressed).
    With $EMBER_CACHE_SIGNING_KEY set, only entries signed with it (the bundle is then signed)."""
    signing = _signer()
    count, size, skipped = export_bundle(resolve_cache_dir(cache_dir), file, signing)
    for name in skipped:
        say(f"skipped {'damaged or unsigned' if signing else 'damaged'} {name}", style="yellow")
    say(f"exported {entries(count)} ({format_size(size)}) to {file}")


@cache.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust-unsigned", is_flag=True,
              help="With $EMBER_CACHE_SIGNING_KEY set: import entries that are unsigned or "
                   "signed with another key too, and sign them with this one.")
@click.option("--max-size", type=SizeType(), default=DEFAULT_MAX_SIZE, show_default=True,
              help="Refuse a bundle whose members hold more than this many bytes (500M, 2G).")
@cache_dir_option
def import_(file: Path, trust_unsigned: bool, max_size: int, cache_dir: Path | None) -> None:
    """Add the entries of FILE, made by `ember cache export`, to the cache. Every member is
    checked first; a bundle holding anything but intact blobs (signed with
    $EMBER_CACHE_SIGNING_KEY, when it is set) is refused whole."""
    directory = resolve_cache_dir(cache_dir)
    report = import_bundle(directory, file, signer=_signer(), trust_unsigned=trust_unsigned,
                           max_size=max_size)
    for header in report.added:
        say(f"added {header.key[:16]} {header.model_name} on {header.device} "
            f"({header.plugin} {header.plugin_version})")
    say(f"imported {entries(len(report.added))} into {directory}"
        + (f"; {len(report.present)} already there" if report.present else ""))
