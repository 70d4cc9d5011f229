"""``ember models``: the model store (``ember.get_dir()``) and models' locations."""

from __future__ import annotations

from pathlib import Path

import click

from ember.cli._common import echo_json, json_option, row, say, show, table, warn
from ember.store import models as store


@click.group()
def models() -> None:
    """The local model store: models found by name by `ember run NAME`, Core.read_model("NAME")
    and Core.compile_model("NAME", ...)."""


def _store_line() -> str:
    origin = {"set_dir": "ember.set_dir", "default": "the default"}.get(
        store.get_dir_origin(), f"${store.get_dir_origin()}")
    return f"store {store.get_dir()} (from {origin})"


@models.command("ls")
@json_option
def ls(as_json: bool) -> None:
    """List the stored models and the models with a location set."""
    locations = store.model_locations()
    found = []
    for name in sorted({*locations, *store.list_stored_models()}):
        path = store.cached_model_path(name)
        if name in locations and path != store.stored_model_path(name):
            source, path = "location", path or locations[name]
        else:
            source = "store"
        found.append({"name": name, "path": str(path), "source": source,
                      "exists": Path(path).is_file()})
    if as_json:
        echo_json({"store": {"dir": str(store.get_dir()), "origin": store.get_dir_origin()},
                   "models": found})
        return
    say(_store_line())
    if not found:
        say("no models; add one with `ember models save NAME FILE` or `ember models set NAME PATH`")
        return
    listing = table("name", "from", "path")
    for model in found:
        missing = "" if model["exists"] else " (missing)"
        row(listing, model["name"], model["source"], model["path"] + missing)
    show(listing)


@models.command("path")
@click.argument("name")
def path(name: str) -> None:
    """Print the file model NAME is read from (its location first, then the store)."""
    click.echo(str(store.find_model(name)))


@models.command("set")
@click.argument("name")
@click.argument("location", type=click.Path(path_type=Path))
def set_(name: str, location: Path) -> None:
    """Remember that model NAME is the file LOCATION (an .onnx file, or a directory holding
    model.onnx); every later process using the same store sees it."""
    store.set_model_cache(name, location)
    resolved = store.model_locations()[name]
    say(f"{name} -> {resolved}")
    if not resolved.exists():
        warn(f"{resolved} does not exist (yet)")


@models.command("clear")
@click.argument("name")
def clear(name: str) -> None:
    """Forget the location set for NAME. No file is deleted."""
    location = store.model_locations().get(store.validate_model_name(name))
    store.clear_model_cache(name)
    if location is None:
        say(f"no location was set for {name}")
    else:
        say(f"forgot the location of {name} ({location}); no file was deleted")


@models.command("save")
@click.argument("name")
@click.argument("source")
def save(name: str, source: str) -> None:
    """Copy the ONNX file SOURCE into the store as model NAME (atomically)."""
    target = store.save_model(name, source)
    say(f"saved {name} as {target}")
    location = store.model_locations().get(name)
    if location is not None:
        warn(f"a location is set for {name} ({location}) and is read first; "
             f"`ember models clear {name}` forgets it")
