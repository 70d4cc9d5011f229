"""The real models of the conformance zoo and the demo, as plain files fetched once from the package
index, whatever Python is running.

PaddleOCR's text detector, recogniser and direction classifier ship inside the
``rapidocr-onnxruntime`` 1.4.4 wheel, whose metadata says ``Requires-Python <3.13``; Silero VAD's
ONNX files ship inside the ``silero-vad`` 6.2.3 wheel, which requires torch. Only their ``.onnx``
files are used, so installing either is neither needed nor, for the first on Python 3.13,
possible. :func:`fetch` runs ``pip download --no-deps --python-version 3.12 --only-binary=:all:``,
which downloads a wheel on any Python, and extracts the ``.onnx`` members alone into the models
directory; later runs need no network. With ``pip install "ember[testing]"`` (pytest and the
onnxruntime oracle), this is the one command that completes the suite's zoo (``make`` runs it)::

    python -m ember.testing.model_files [--models-dir DIR]

The models directory is ``$EMBER_TEST_MODELS_DIR``, else ``share/ember/models`` in the running
environment (``sys.prefix``: the virtual environment), like the environment's packages: it does not
depend on the home directory or the current directory, which tests and programs change.
:func:`model_file` also finds the files inside an installed ``rapidocr_onnxruntime`` or
``silero_vad`` package, for those who installed them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

MODELS_DIR_ENV = "EMBER_TEST_MODELS_DIR"


class Source(NamedTuple):
    """A wheel whose ONNX members (``member`` matches them; its group is the file name) are
    models of the zoo; ``package`` is its import name, where an installed copy keeps them."""

    distribution: str
    version: str
    package: str
    member: re.Pattern[str]


SOURCES = (
    Source("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime",
           re.compile(r"rapidocr_onnxruntime/models/([A-Za-z0-9_.\-]+\.onnx)")),
    Source("silero-vad", "6.2.3", "silero_vad",
           re.compile(r"silero_vad/data/(silero_vad_op18_ifless\.onnx|"
                      r"silero_vad_openvino_16k\.onnx)")),
)
PACKAGE, VERSION = SOURCES[0].distribution, SOURCES[0].version
#: The wheels are pure Python: any version they accept will do for ``pip download``.
_WHEEL_PYTHON = "3.12"
#: What to run when a model file is missing (said by errors and by the suite's summary).
FETCH_COMMAND = "python -m ember.testing.model_files"


def default_models_dir() -> Path:
    """``$EMBER_TEST_MODELS_DIR``, else ``<sys.prefix>/share/ember/models``."""
    configured = os.environ.get(MODELS_DIR_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "share" / "ember" / "models"


def release_dir(models_dir: str | os.PathLike[str] | None = None,
                source: Source = SOURCES[0]) -> Path:
    """Where the files of this release of a source wheel are extracted."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    return root / f"{source.distribution}-{source.version}"


def model_file(name: str, models_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """A model file by name (``"ch_ppocr_mobile_v2.0_cls_infer.onnx"``): from the models directory
    once fetched, else from an installed package of its wheel; None when neither has it. Nothing
    is downloaded and nothing is imported."""
    for source in SOURCES:
        fetched = release_dir(models_dir, source) / name
        if fetched.is_file():
            return fetched
    for source in SOURCES:
        spec = importlib.util.find_spec(source.package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            for path in Path(location).glob(f"*/{name}"):
                if source.member.fullmatch(f"{source.package}/{path.parent.name}/{name}"):
                    return path
    return None


def fetch(models_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Download each source wheel (once) and extract its ``.onnx`` files; returns their
    directories."""
    return [_fetch(source, models_dir) for source in SOURCES]


def _fetch(source: Source, models_dir: str | os.PathLike[str] | None) -> Path:
    import filelock

    release = release_dir(models_dir, source)
    marker = release / "COMPLETE"
    if marker.is_file():
        return release
    release.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(release.parent / "fetch.lock"):
        if not marker.is_file():
            downloads = release.parent / "wheels"
            names = extract_models(_download(downloads, source), release, source)
            marker.write_text(f"{source.distribution} {source.version}: {' '.join(names)}\n")
            shutil.rmtree(downloads, ignore_errors=True)  # pip's own cache keeps the wheel
    return release


def _download(directory: Path, source: Source) -> Path:
    pattern = f"{source.distribution.replace('-', '_')}-{source.version}-*.whl"
    found = sorted(directory.glob(pattern))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", f"{source.distribution}=={source.version}", "--python-version",
             _WHEEL_PYTHON, "--only-binary=:all:", "-d", str(directory)], check=True)
        found = sorted(directory.glob(pattern))
    if not found:
        raise FileNotFoundError(f"pip downloaded no {source.distribution} {source.version} "
                                f"wheel into {directory}")
    return found[0]


def extract_models(wheel: str | os.PathLike[str], destination: str | os.PathLike[str],
                   source: Source = SOURCES[0]) -> list[str]:
    """Extract the wheel's model members (``source.member``), flat, into ``destination``;
    returns their names. Other members are ignored, and a model member's name must be a plain
    file name, so nothing is written outside ``destination``."""
    destination = Path(destination)
    partial = destination.with_name(f"{destination.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    names = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            match = source.member.fullmatch(info.filename)
            if match is None or info.is_dir():
                continue
            with archive.open(info) as member, open(partial / match.group(1), "wb") as target:
                shutil.copyfileobj(member, target)
            names.append(match.group(1))
    if not names:
        shutil.rmtree(partial)
        raise FileNotFoundError(f"{wheel} holds no model of {source.distribution}")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return sorted(names)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help=f"default: {default_models_dir()}")
    args = parser.parse_args(argv)
    for source, release in zip(SOURCES, fetch(args.models_dir), strict=True):
        print(f"{source.distribution} {source.version} models in {release}:",
              " ".join(p.name for p in sorted(release.glob("*.onnx"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
