"""``python -m ember.compat.openvino SCRIPT [ARGS...]`` and ``... -m MODULE [ARGS...]``.

Runs a program as ``python SCRIPT`` or ``python -m MODULE`` would, with ``openvino`` resolving
to Ember for the whole process (:func:`~ember.compat.openvino.finder.install`): ``sys.argv``,
``sys.path[0]``, ``__main__``, exit codes and tracebacks are the program's own, without the
runner's frames.
"""

from __future__ import annotations

import os
import runpy
import sys
import types
from collections.abc import Callable, Sequence

from ember.compat.openvino.finder import install

USAGE = """\
usage: python -m ember.compat.openvino SCRIPT [ARGS...]
       python -m ember.compat.openvino -m MODULE [ARGS...]

Run a program written for OpenVINO's Python API on Ember: in this process, `import openvino`,
`import openvino.runtime` and their submodules give Ember's modules, even where OpenVINO is
installed. ARGS are the program's own arguments (its sys.argv[1:]).
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program ``argv`` names (``sys.argv[1:]`` by default); the exit code.

    The program's ``SystemExit`` goes through unchanged, so its exit code is the process's.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(USAGE)
        return 0 if args else 2
    if args[0] == "-m":
        if len(args) < 2:
            sys.stderr.write("Argument expected for the -m option\n" + USAGE)
            return 2
        return _run_module(args[1], args[2:])
    if args[0].startswith("-") and args[0] != "-":
        sys.stderr.write(f"unknown option {args[0]}\n" + USAGE)
        return 2
    return _run_script(args[0], args[1:])


def _run_script(script: str, args: list[str]) -> int:
    if not os.path.exists(script):  # python's own words and exit code
        sys.stderr.write(f"{sys.executable}: can't open file {os.path.abspath(script)!r}: "
                         f"[Errno 2] No such file or directory\n")
        return 2
    sys.argv = [script, *args]
    # python SCRIPT puts the script's directory first (none with -P, Python 3.11's safe_path)
    if sys.path and not getattr(sys.flags, "safe_path", False):
        sys.path[0] = (os.path.dirname(os.path.realpath(script)) if os.path.isfile(script)
                       else os.path.abspath(script))
    install()
    path = os.path.abspath(script)  # __main__.__file__ is absolute, as python makes it
    return _run(lambda: runpy.run_path(path, run_name="__main__"))


def _run_module(module: str, args: list[str]) -> int:
    import importlib.util

    install()  # before looking: the module may be one of openvino's, or import it
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError as exc:
        found, reason = False, str(exc)
    else:
        reason = f"No module named {module}"
    if not found:
        sys.stderr.write(f"{sys.executable}: {reason}\n")
        return 1
    sys.argv = [module, *args]  # run_module puts the module's file in sys.argv[0]
    return _run(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True))


def _run(program: Callable[[], object]) -> int:
    try:
        program()
    except Exception as exc:  # SystemExit and KeyboardInterrupt go on as they would in python
        traceback = _without_runner_frames(exc.__traceback__)
        sys.excepthook(type(exc), exc.with_traceback(traceback), traceback)
        return 1
    return 0


def _without_runner_frames(traceback: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the program's first frame on: the runner's and runpy's are not the
    program's (``python SCRIPT`` shows none of them either)."""
    ours = {os.path.normcase(path) for path in (__file__, runpy.__file__, "<frozen runpy>")}
    while traceback is not None and os.path.normcase(
            traceback.tb_frame.f_code.co_filename) in ours:
        traceback = traceback.tb_next
    return traceback
