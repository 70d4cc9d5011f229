"""Fleet cache: a remote (Redis) hit against a local hit and a cold compile, on loopback.

    .venv/bin/python benchmarks/bench_fleet.py [--repeats 5]

Starts its own redis-server on 127.0.0.1. For blobs of about 1, 10 and 100 MB (TEMPLATE models
made of dense layers), it times ``compile_model(path)`` in this process: a local hit (warm cache
directory), a remote hit (an empty cache directory each time, the server warm: fetch, verify the
signature and checksums, write back, import) and a cold compile with both tiers on.
Goal: a remote hit of the 10 MB blob costs <= 1.3x a local hit.

A model file younger than ember.cache.file_digest.RACY_SECONDS (2 s) has its digest computed on
every compile, not remembered, so by default the local hits here hash the model file as the
remote hits do (each row's file is written just before). ``--remembered-digests`` waits until
each file is older than that first: the local hit is then a host's real warm start (digest
remembered), the remote hit still a fresh host's (digest computed).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ember
from ember.cache.file_digest import RACY_SECONDS
from ember.store.atomic import background
from ember.testing.models import dense_stack

SIZES = {"1 MB": (512, 1), "10 MB": (1024, 3), "100 MB": (2048, 6)}  # (dim, layers)


def dense_model(path: Path, dim: int, layers: int) -> Path:
    path.write_bytes(dense_stack(layers, dim).SerializeToString())
    return path


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server") or shutil.which(
        "redis-server", path=str(Path(sys.executable).parent))
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make test` once")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(workdir)],
                              stdout=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.01)
    return server, f"redis://127.0.0.1:{port}/0"


def timed_compile(model: Path, cache_dir: Path, remote: str) -> tuple[float, bool]:
    core = ember.Core()
    start = time.perf_counter()
    compiled = core.compile_model(model, "TEMPLATE", {
        "CACHE_DIR": str(cache_dir), "CACHE_REMOTE": remote, "CACHE_SIGNING_KEY": "bench"})
    return (time.perf_counter() - start) * 1e3, compiled.get_property("LOADED_FROM_CACHE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--remembered-digests", action="store_true",
                        help="local hits with the model file's digest remembered (see above)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        server, url = start_redis(work)
        try:
            print(f"{'blob':>8} {'cold':>10} {'local hit':>10} {'remote hit':>11} {'ratio':>6}")
            for label, (dim, layers) in SIZES.items():
                model = dense_model(work / f"dense{dim}x{layers}.onnx", dim, layers)
                if args.remembered_digests:
                    time.sleep(RACY_SECONDS + 0.2)
                cold = [timed_compile(model, work / f"cold{label}{i}", url + f"?prefix=c{i}")[0]
                        for i in range(min(args.repeats, 3))]
                warm_dir = work / f"warm{label}"
                timed_compile(model, warm_dir, url)
                local, remote = [], []
                for i in range(args.repeats):  # interleaved, so that load hits both alike
                    local.append(timed_compile(model, warm_dir, url))
                    background.wait()
                    remote.append(timed_compile(model, work / f"fresh{label}{i}", url))
                    background.wait()
                assert all(hit for _, hit in local + remote)
                local_ms = statistics.median(ms for ms, _ in local)
                remote_ms = statistics.median(ms for ms, _ in remote)
                blob_mb = next(warm_dir.glob("blobs/*.blob")).stat().st_size / 1e6
                print(f"{blob_mb:6.1f}MB {statistics.median(cold):8.1f}ms {local_ms:8.1f}ms "
                      f"{remote_ms:9.1f}ms {remote_ms / local_ms:5.2f}x")
        finally:
            background.wait()  # write-backs still running would race the directory's removal
            server.kill()
    print("goal: remote hit of the 10 MB blob <= 1.3x a local hit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
