"""`make demo`: the `ember` command line on a real ONNX model, on every available device.

The model is PaddleOCR's text-direction classifier (is this text line upright or upside down?),
one of the files of rapidocr-onnxruntime 1.4.4 (``make`` fetches them). The demo runs, and
shows, these commands:

1. ``ember devices``: the devices, their plugins, and any plugin that failed to load;
2. ``ember models save ppocr-cls FILE``: the model into a model store, so that it is found by
   name (a temporary store, through ``EMBER_HOME``: the demo leaves nothing behind);
3. ``ember run ppocr-cls -d DEVICE --shape x=1,3,48,192`` on every device: the outputs and the
   times taken. A device that cannot compile yet (``NotSupportedError``, exit status 3) is
   reported as skipped, not as a failure;
4. for devices that can export: ``ember compile`` into the model cache the commands share (the
   run above already put the model there), then ``ember run`` again, which loads the compiled
   model instead of compiling it, and ``ember cache ls``.

It exits with status 1 when a device fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ember.testing import ppocr_cls_path

NAME = "ppocr-cls"
SHAPE = "x=1,3,48,192"
NOT_SUPPORTED = 3  # the exit status of `ember` when a device cannot do what was asked


def ember_command() -> list[str]:
    script = Path(sys.executable).with_name("ember")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ember.cli.main"]


def ember(*args, env, quiet=False):
    """Run `ember ARGS`, showing the command; stdout is shown unless ``quiet``, stderr kept."""
    if not quiet:
        shown = " ".join(args)
        prefix = "EMBER_CACHE_DIR=... " if "EMBER_CACHE_DIR" in env else ""
        print(f"\n$ {prefix}ember {shown}", flush=True)
    return subprocess.run([*ember_command(), *args], env=env, text=True, check=False,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ember-demo-") as home:
        env = {k: v for k, v in os.environ.items() if k != "EMBER_CACHE_DIR"}
        env["EMBER_HOME"] = home
        ember("devices", env=env)
        listing = json.loads(ember("devices", "--json", env=env, quiet=True).stdout)
        ember("models", "save", NAME, str(ppocr_cls_path()), env=env)

        outcome = {}
        for device in listing["devices"]:
            name = device["name"]
            result = ember("run", NAME, "-d", name, "--shape", SHAPE, env=env)
            reason = result.stderr.strip().removeprefix("error: ")
            if result.returncode == NOT_SUPPORTED:
                outcome[name] = f"skipped: {reason}"
            elif result.returncode:
                outcome[name] = f"failed: {reason}"
            else:
                outcome[name] = "ok"
            if result.returncode:
                print(f"{name}: {outcome[name]}")

        exporting = [d["name"] for d in listing["devices"]
                     if d.get("import_export") and outcome[d["name"]] == "ok"]
        for name in exporting:
            ember("compile", NAME, "-d", name, env=env)
            ember("run", NAME, "-d", name, "--shape", SHAPE, env=env)
        if exporting:
            ember("cache", "ls", env=env)

    print("\nsummary:")
    for name, text in outcome.items():
        print(f"  {name:<10} {text}")
    return 1 if any(text.startswith("failed") for text in outcome.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
