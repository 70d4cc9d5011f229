"""What the commands share: consoles, JSON and table output, sizes, the cache directory, errors."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ember import properties as props
from ember.common.sizes import parse_size
from ember.errors import EmberError, NotSupportedError
from ember.runtime.settings import Settings
from ember.store.models import compiled_cache_dir

#: Exit statuses: 0 success, 1 an error, 2 a usage error (click's), 3 the device cannot do what
#: was asked (``NotSupportedError``), so that scripts can tell "skip this device" from "failed".
EXIT_ERROR = 1
EXIT_NOT_SUPPORTED = 3
#: Width used when the output is not a terminal (rich would otherwise wrap at 80 columns).
PIPE_WIDTH = 160

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A failure the command explains itself; shown as one ``error:`` line, exit status 1."""

    def show(self, file: Any = None) -> None:
        print_error(self.format_message())


@functools.cache
def stdout() -> Console:
    return _console(sys.stdout, stderr=False)


@functools.cache
def stderr() -> Console:
    return _console(sys.stderr, stderr=True)


def _console(stream: Any, *, stderr: bool) -> Console:
    terminal = hasattr(stream, "isatty") and stream.isatty()
    width = None if terminal or "COLUMNS" in os.environ else PIPE_WIDTH
    return Console(stderr=stderr, width=width, highlight=False)


def printable(text: str) -> str:
    """``text`` safe to print on any terminal: a lone surrogate (an undecodable byte of a file
    name, or one a blob header holds) and control characters (an escape sequence planted in a
    model name) are shown as Python escapes, so that no name can fail or take over the output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def say(message: str, *, style: str | None = None) -> None:
    """One line of output, never read as rich markup (paths and shapes hold brackets)."""
    stdout().print(Text(printable(message), style=style or ""), soft_wrap=True)


def warn(message: str) -> None:
    stderr().print(Text(f"warning: {printable(message)}", style="yellow"), soft_wrap=True)


def print_error(message: str) -> None:
    stderr().print(Text(f"error: {printable(message)}", style="bold red"), soft_wrap=True)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(*columns: str, title: str | None = None) -> Table:
    result = Table(title=None if title is None else printable(title), title_justify="left",
                   header_style="bold")
    for column in columns:
        numeric = column.endswith(("ms", "size", "MB", "count"))
        result.add_column(column, justify="right" if numeric else "left", overflow="fold")
    return result


def row(target: Table, *cells: Any) -> None:
    target.add_row(*(Text("" if c is None else printable(str(c))) for c in cells))


def show(renderable: Any) -> None:
    stdout().print(renderable)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table.")(function)


def cache_dir_option(function: F) -> F:
    return click.option(
        "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="The model cache directory [default: $EMBER_CACHE_DIR, else <store>/compiled].",
    )(function)


def resolve_cache_dir(option: Path | None) -> Path:
    """The model cache of every command: ``--cache-dir``, else the ``CACHE_DIR`` a ``Core``
    would use with nothing set on it (``ember.runtime.settings`` decides: ``$EMBER_CACHE_DIR``),
    else ``<ember.get_dir()>/compiled``. ``ember compile`` fills the cache that ``ember run`` reads.

    The default directory and its parents are created; for a directory that was given, only the
    directory itself may be missing (as for ``CACHE_DIR``: a typo is reported, not created).
    """
    if option is None:
        configured = Settings().core_value(None, props.CACHE_DIR)
        option = Path(configured) if configured else None
    if option is None:
        directory = compiled_cache_dir()
        directory.parent.mkdir(parents=True, exist_ok=True)
        return directory
    directory = option.expanduser().absolute()
    if not directory.parent.is_dir():
        raise CommandError(f"the parent of the cache directory {directory} does not exist")
    return directory


class SizeType(click.ParamType):
    """A byte count such as ``500M``, ``2G`` or ``1048576`` (``ember.common.sizes.parse_size``)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        size = parse_size(value)
        if size is None:
            self.fail(f"{value!r} is not a size; use bytes or K, M, G, T (500M, 2G)", param, ctx)
        return size


def format_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def format_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def timed(action: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``action(*args)`` and the seconds it took."""
    start = time.perf_counter()
    result = action(*args)
    return result, time.perf_counter() - start


def describe_error(error: BaseException) -> str:
    """An error as one readable line."""
    if isinstance(error, EmberError):
        text = str(error)
    elif isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = f"{type(error).__name__}: {error} (--debug shows the traceback)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def exit_status(error: BaseException) -> int:
    return EXIT_NOT_SUPPORTED if isinstance(error, NotSupportedError) else EXIT_ERROR


def configure_logging(debug: bool) -> None:
    """Warnings of Ember's loggers as ``warning:`` lines on stderr; everything with ``debug``.

    Plugin failures are not repeated as warnings: ``ember devices`` lists them, and an unknown
    device's error names them. CacheWarnings are logged by the cache too, so the Python warning
    is not shown a second time.
    """
    import warnings

    from ember.errors import CacheWarning

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    fmt = "%(levelname)s %(name)s: %(message)s" if debug else "warning: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    ember_log = logging.getLogger("ember")
    ember_log.addHandler(handler)
    ember_log.setLevel(logging.DEBUG if debug else logging.WARNING)
    ember_log.propagate = False
    if not debug:
        logging.getLogger("ember.plugins").setLevel(logging.ERROR)
        warnings.simplefilter("ignore", CacheWarning)


@contextlib.contextmanager
def captured_log(name: str, level: int = logging.INFO) -> Iterator[list[str]]:
    """Collect the messages of logger ``name`` at ``level`` and above while the block runs."""
    messages: list[str] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger(name)
    collector = Collector(level)
    previous = logger.level
    logger.addHandler(collector)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield messages
    finally:
        logger.removeHandler(collector)
        logger.setLevel(previous)
