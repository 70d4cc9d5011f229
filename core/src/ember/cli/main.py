"""``ember``: the command group, its error handling, and the entry point.

Every failure is one ``error:`` line on stderr and a non-zero exit status (1; 2 for usage errors;
3 when the device cannot do what was asked), never a traceback, unless ``--debug`` is given (or
``EMBER_DEBUG=1``), which also shows Ember's debug logs.
"""

from __future__ import annotations

import click

from ember._version import __version__
from ember.cli import benchmark, cache, devices, models, plugin_new, run
from ember.cli import compile as compile_
from ember.cli._common import configure_logging, describe_error, exit_status, print_error


class EmberGroup(click.Group):
    """A click group that turns any exception of a command into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            print_error("interrupted")
            ctx.exit(130)
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            print_error(describe_error(error))
            ctx.exit(exit_status(error))


@click.group(cls=EmberGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="EMBER_DEBUG",
              help="Show tracebacks and Ember's debug logs.")
@click.version_option(__version__, prog_name="ember")
def cli(debug: bool) -> None:
    """Compile and run ONNX models on Ember's devices; look after the model cache and store."""
    configure_logging(debug)


cli.add_command(devices.devices)
cli.add_command(compile_.compile_command)
cli.add_command(run.run)
cli.add_command(cache.cache)
cli.add_command(models.models)
cli.add_command(benchmark.benchmark)
cli.add_command(plugin_new.plugin)


def main() -> None:
    """The ``ember`` console script."""
    cli(prog_name="ember")


if __name__ == "__main__":
    main()
