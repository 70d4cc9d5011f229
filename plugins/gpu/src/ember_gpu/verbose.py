"""Verbose mode: one line per kernel creation, saying how the kernel was obtained and how long
it took, after oneDNN's ``ONEDNN_VERBOSE=2``::

    ember_verbose,gpu,create:cache_miss,GPU.0,cnn[2x3x16x16],kernels=7,id=5f0c3a9e71d2,812.403
    ember_verbose,gpu,create:from_cache_blob,GPU.0,cnn[2x3x16x16],kernels=7,id=5f0c3a9e71d2,4.118
    ember_verbose,gpu,create:cache_hit,GPU.0,cnn[2x3x16x16],kernels=7,id=5f0c3a9e71d2,0.006

``cache_miss``: built from source; ``from_cache_blob``: created from a binary in the kernel cache
(CACHE_DIR) or given to ``create_kernel``; ``cache_hit``: the identical kernel was already in the
in-memory primitive cache. The last field is milliseconds.

Every line is logged at DEBUG level on the ``ember_gpu.verbose`` logger (route it with the
standard ``logging`` module); with ``EMBER_VERBOSE=2`` or more it is also printed on stdout.
"""

from __future__ import annotations

import logging
import os

VERBOSE_ENV = "EMBER_VERBOSE"
log = logging.getLogger("ember_gpu.verbose")

CACHE_MISS, CACHE_HIT, FROM_CACHE_BLOB = "cache_miss", "cache_hit", "from_cache_blob"


def level() -> int:
    """The verbosity asked for by ``EMBER_VERBOSE`` (0 when unset or not a number)."""
    try:
        return int(os.environ.get(VERBOSE_ENV, "0"))
    except ValueError:
        return 0


def kernel_created(how: str, device: str, name: str, kernels: int, blob_id: str,
                   seconds: float) -> str:
    line = (f"ember_verbose,gpu,create:{how},{device},{name},kernels={kernels},"
            f"id={blob_id[:12]},{seconds * 1e3:.3f}")
    log.debug("%s", line)
    if level() >= 2:
        print(line, flush=True)
    return line
