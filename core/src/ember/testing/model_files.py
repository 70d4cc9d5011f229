"""The real models of the conformance zoo and the demo, as plain files fetched once from the package
index, whatever Python is running.

PaddleOCR's text detector, recogniser and direction classifier ship inside the
``rapidocr-onnxruntime`` 1.4.4 wheel, whose metadata says ``Requires-Python <3.13``. Only its
``.onnx`` files are used, so installing it is neither needed nor, on Python 3.13, possible.
:func:`fetch` runs ``pip download --no-deps --python-version 3.12 --only-binary=:all:``, which
downloads the wheel on any Python, and extracts the ``.onnx`` members alone into the models
directory; later runs need no network. From a shell (``make`` runs this)::

    python -m ember.testing.model_files [--models-dir DIR]

The models directory is ``$EMBER_TEST_MODELS_DIR``, else ``share/ember/models`` in the running
environment (``sys.prefix``: the virtual environment), like the environment's packages: it does not
depend on the home directory or the current directory, which tests and programs change.
:func:`model_file` also finds the files inside an installed ``rapidocr_onnxruntime`` package, for
those who installed it.
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

MODELS_DIR_ENV = "EMBER_TEST_MODELS_DIR"
PACKAGE, VERSION = "rapidocr-onnxruntime", "1.4.4"
#: The wheel is pure Python: any version it accepts will do for ``pip download``.
_WHEEL_PYTHON = "3.12"
_MEMBER = re.compile(r"rapidocr_onnxruntime/models/([A-Za-z0-9_.\-]+\.onnx)")
#: What to run when a model file is missing (said by errors and by the suite's summary).
FETCH_COMMAND = "python -m ember.testing.model_files"


def default_models_dir() -> Path:
    """``$EMBER_TEST_MODELS_DIR``, else ``<sys.prefix>/share/ember/models``."""
    configured = os.environ.get(MODELS_DIR_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "share" / "ember" / "models"


def release_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the files of this release of the package are extracted."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    return root / f"{PACKAGE}-{VERSION}"


def model_file(name: str, models_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """A model file by name (``"ch_ppocr_mobile_v2.0_cls_infer.onnx"``): from the models directory
    once fetched, else from an installed ``rapidocr_onnxruntime`` package; None when neither has
    it. Nothing is downloaded and nothing is imported."""
    fetched = release_dir(models_dir) / name
    if fetched.is_file():
        return fetched
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "models" / name
        if path.is_file():
            return path
    return None


def fetch(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download the wheel (once) and extract its ``.onnx`` files; returns their directory."""
    import filelock

    release = release_dir(models_dir)
    marker = release / "COMPLETE"
    if marker.is_file():
        return release
    release.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(release.parent / "fetch.lock"):
        if not marker.is_file():
            downloads = release.parent / "wheels"
            names = extract_models(_download(downloads), release)
            marker.write_text(f"{PACKAGE} {VERSION}: {' '.join(names)}\n")
            shutil.rmtree(downloads, ignore_errors=True)  # pip's own cache keeps the wheel
    return release


def _download(directory: Path) -> Path:
    pattern = f"{PACKAGE.replace('-', '_')}-{VERSION}-*.whl"
    found = sorted(directory.glob(pattern))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", f"{PACKAGE}=={VERSION}", "--python-version", _WHEEL_PYTHON,
             "--only-binary=:all:", "-d", str(directory)], check=True)
        found = sorted(directory.glob(pattern))
    if not found:
        raise FileNotFoundError(f"pip downloaded no {PACKAGE} {VERSION} wheel into {directory}")
    return found[0]


def extract_models(wheel: str | os.PathLike[str], destination: str | os.PathLike[str]
                   ) -> list[str]:
    """Extract the wheel's ``rapidocr_onnxruntime/models/*.onnx`` files, flat, into
    ``destination``; returns their names. Other members are ignored, and a model member's name
    must be a plain file name, so nothing is written outside ``destination``."""
    destination = Path(destination)
    partial = destination.with_name(f"{destination.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    names = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            match = _MEMBER.fullmatch(info.filename)
            if match is None or info.is_dir():
                continue
            with archive.open(info) as source, open(partial / match.group(1), "wb") as target:
                shutil.copyfileobj(source, target)
            names.append(match.group(1))
    if not names:
        shutil.rmtree(partial)
        raise FileNotFoundError(f"{wheel} holds no rapidocr_onnxruntime/models/*.onnx")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return sorted(names)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help=f"default: {default_models_dir()}")
    args = parser.parse_args(argv)
    release = fetch(args.models_dir)
    print(f"{PACKAGE} {VERSION} models in {release}:",
          " ".join(p.name for p in sorted(release.glob("*.onnx"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
