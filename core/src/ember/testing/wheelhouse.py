"""Build distributions as wheels and install the wheels, not the source tree, into a fresh virtual
environment: what catches a plugin that only works from an editable checkout (missing package
data, an entry point that points nowhere, an undeclared dependency).

Used by Ember's own tests (``tests/test_wheels.py``, ``tests/test_template_copy.py``), which share
one environment per test session through :func:`wheel_environment`; a plugin's CI can do the same
with its own sources.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_NOT_SOURCES = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__",
                                      ".pytest_cache", ".ruff_cache")


def build_wheels(sources: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
                 ) -> list[Path]:
    """Build a wheel of each source tree into ``out_dir``; returns the wheels.

    Each tree is copied first (without build/, egg-info, caches), so that nothing left over from
    an editable install or an earlier build ends up in a wheel, and the checkout is not written
    to. Uses ``python -m build`` when it is installed, else ``pip wheel --no-deps``; both build
    in an isolated environment with the build requirements each pyproject.toml declares.
    """
    out = Path(out_dir)
    copies = []
    for source in map(Path, sources):
        copy = out / "sources" / source.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy, ignore=_NOT_SOURCES)
        copies.append(copy)
    wheels = out / "wheels"
    if importlib.util.find_spec("build") is not None:
        for copy in copies:
            _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(copy)])
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
              "--no-deps", "--wheel-dir", str(wheels), *map(str, copies)])
    return sorted(wheels.glob("*.whl"))


@dataclass
class VirtualEnv:
    """A virtual environment without the system's site-packages."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if os.name == "nt" else "python")

    def environ(self) -> dict[str, str]:
        """The environment of a shell with this venv active (and nothing leaking in)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(VIRTUAL_ENV=str(self.root), PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PATH=os.pathsep.join([str(self.bin), env.get("PATH", "")]))
        return env

    def run(self, *args: str, cwd: str | os.PathLike[str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run this venv's Python with ``args``; output captured as text."""
        return subprocess.run([str(self.python), *args], cwd=cwd, env=self.environ(),
                              capture_output=True, text=True, check=check)

    def pip_install(self, *args: str) -> None:
        _run([str(self.python), "-m", "pip", "install", "--quiet", *args], env=self.environ())


def create_venv(root: str | os.PathLike[str]) -> VirtualEnv:
    root = Path(root)
    _run([sys.executable, "-m", "venv", "--clear", str(root)])
    return VirtualEnv(root)


@dataclass
class WheelEnvironment:
    """Wheels of the given distributions, installed with their dependencies in a fresh venv."""

    wheels: list[Path]
    venv: VirtualEnv
    timings: dict[str, float] = field(default_factory=dict)


@functools.cache
def wheel_environment(workdir: str, sources: tuple[str, ...], extra: tuple[str, ...] = (),
                      no_deps: tuple[str, ...] = ()) -> WheelEnvironment:
    """Build ``sources`` as wheels in ``workdir``, create a venv there and install the wheels plus
    ``extra`` requirements (with dependencies, from the package index) and ``no_deps`` ones
    (without). Made once per process for the same arguments."""
    timings = {}
    start = time.perf_counter()
    wheels = build_wheels(sources, Path(workdir))
    timings["build wheels"] = time.perf_counter() - start
    start = time.perf_counter()
    venv = create_venv(Path(workdir) / "venv")
    timings["create venv"] = time.perf_counter() - start
    start = time.perf_counter()
    venv.pip_install(*map(str, wheels), *extra)
    if no_deps:
        venv.pip_install("--no-deps", *no_deps)
    timings["install wheels and dependencies"] = time.perf_counter() - start
    return WheelEnvironment(wheels, venv, timings)


#: The distributions of an Ember checkout, as directories relative to its root.
CHECKOUT_DISTRIBUTIONS = ("core", "plugins/template", "plugins/cpu", "plugins/gpu",
                          "plugins/openvino")
#: What the checkout's tests add: pytest. The zoo's real models are files that
#: :mod:`ember.testing.model_files` fetches into the venv.
CHECKOUT_EXTRA = ("pytest",)
CHECKOUT_NO_DEPS = ("silero-vad==6.2.3",)


def checkout_environment(checkout: str | os.PathLike[str], workdir: str | os.PathLike[str]
                         ) -> WheelEnvironment:
    """The wheels of an Ember checkout's distributions, installed in a fresh venv."""
    sources = tuple(str(Path(checkout) / d) for d in CHECKOUT_DISTRIBUTIONS)
    environment = wheel_environment(str(workdir), sources, CHECKOUT_EXTRA, CHECKOUT_NO_DEPS)
    # The zoo's real models, into the venv (pip's cache has the wheel after the first time).
    environment.venv.run("-m", "ember.testing.model_files", check=True)
    return environment


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
