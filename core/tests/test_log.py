"""Ember's loggers are stand-ins that import logging only when a record can go somewhere."""

import json
import logging
import os
import subprocess
import sys
import textwrap

from ember.common.log import get_logger
from ember.testing import ppocr_cls_path
from ember.testing.subprocesses import pythonpath


def test_records_reach_a_configured_logger(caplog):
    log = get_logger("ember.test_log")
    with caplog.at_level(logging.DEBUG, logger="ember.test_log"):
        assert log.isEnabledFor(logging.DEBUG)
        log.debug("debug %s", 1)
        log.info("info %s", 2)
        log.warning("warning %s", 3)
    assert [r.getMessage() for r in caplog.records] == ["debug 1", "info 2", "warning 3"]


def test_a_cold_compile_in_a_process_without_logging_does_not_import_it(tmp_path):
    # The compile logs at info level (a miss, an entry not admitted): in a process that never
    # imported logging there is no handler, so the record is dropped unimported.
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import ember
        core = ember.Core()
        core.set_property({{"CACHE_DIR": sys.argv[1]}})
        compiled = core.compile_model({str(ppocr_cls_path())!r}, "CPU")
        compiled(np.zeros((1, 3, 48, 192), np.float32))
        print(json.dumps({{"logging": "logging" in sys.modules,
                          "cached": compiled.get_property("LOADED_FROM_CACHE")}}))
    """)
    env = {**os.environ, "PYTHONPATH": pythonpath(), "EMBER_HOME": str(tmp_path / "home")}
    for cache in ("first", "second"):  # the first start also scans for plugins (and its
        out = subprocess.run(         # packaging imports logging): the second is the cold start
            [sys.executable, "-c", code, str(tmp_path / cache)], capture_output=True, text=True,
            check=True, env=env, cwd=tmp_path)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"logging": False, "cached": False}
