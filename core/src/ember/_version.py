"""The installed version of Ember, read from its distribution metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ember")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
