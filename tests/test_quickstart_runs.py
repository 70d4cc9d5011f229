"""docs/quickstart.md runs: its Python blocks, in order, as one script (as the page says)."""

import re
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_the_quick_start_runs_as_one_script(tmp_path):
    blocks = python_blocks(QUICKSTART.read_text())
    assert len(blocks) >= 10
    script = tmp_path / "quickstart.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # what the page promises about asynchronous inference and AUTO
    assert "done: first image" in done.stdout
    assert "16 True" in done.stdout
    assert "['TEMPLATE']" in done.stdout
