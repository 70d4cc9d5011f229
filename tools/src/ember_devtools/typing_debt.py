"""The typing debt as ``[[tool.mypy.overrides]]`` entries: ``python -m ember_devtools.typing_debt``
runs ``mypy`` (settings: pyproject.toml) and prints, for each module with errors, the error codes
to exempt it from. Paste what a change really needs into pyproject.toml; never widen an entry to
hide an error in new code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

_ERROR = re.compile(r"^(?P<path>\S+\.py):\d+: error: .*\[(?P<code>[a-z-]+)\]$")


def module_of(path: str) -> str:
    """``plugins/cpu/src/ember_cpu/plugin.py`` -> ``ember_cpu.plugin``."""
    inside = path.split("/src/", 1)[1] if "/src/" in path else path
    name = inside.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def debt(mypy_output: str) -> dict[str, set[str]]:
    """Module -> the error codes mypy reported for it."""
    found: dict[str, set[str]] = defaultdict(set)
    for line in mypy_output.splitlines():
        match = _ERROR.match(line.strip())
        if match:
            found[module_of(match["path"])].add(match["code"])
    return dict(found)


def overrides(found: dict[str, set[str]]) -> str:
    """The TOML entries exempting each module from its codes."""
    entries = []
    for module, codes in sorted(found.items()):
        listed = ", ".join(f'"{code}"' for code in sorted(codes))
        entries.append(f'[[tool.mypy.overrides]]\nmodule = ["{module}"]\n'
                       f"disable_error_code = [{listed}]\n")
    return "\n".join(entries)


def main() -> int:
    run = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True)
    print(overrides(debt(run.stdout)) or "# no typing debt: mypy passes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
