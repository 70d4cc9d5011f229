"""Sizes claimed by untrusted bytes are compared with what can be there before anything is
allocated: blob headers (model and kernel entries, signed or not), Redis manifests, and the tar
headers of a bundle. Peak memory is measured in a fresh interpreter (``ru_maxrss``) against the
same work on an honest input: a forged claim of a gigabyte or a terabyte costs a few MB at most.
"""

import gzip
import io
import json
import subprocess
import sys
import tarfile
import textwrap
import warnings

import pytest

import ember
from ember.cache import ModelCache
from ember.cache.key import entry_key
from ember.cache.local import KERNEL_SUFFIX
from ember.cli.bundle import BundleError, import_bundle
from ember.errors import CacheWarning
from ember.store import blob
from ember.store.signing import signer
from ember.testing import forge, ppocr_cls_path

GIB = 1 << 30
#: What a forged input may cost beyond an honest one, in peak resident memory.
SLACK_KB = 24 << 10
KEY = "forged-claims-key"
FIELDS = {"ember_version": "0", "plugin": "p", "plugin_version": "1", "device": "TEMPLATE",
          "device_architecture": "any", "model_name": "forged"}


def peak_kb(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; its JSON result plus its peak RSS in kB."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        import resource
        result["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(result))
    """)
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_claim(path, key, claimed, *, signed, sparse_size=None):
    """An entry whose header claims ``claimed`` payload bytes it does not hold; with
    ``sparse_size``, the file is extended to that size with a hole (no block on disk)."""
    header = {**FIELDS, "key": key.digest, "key_parts": key.parts, "payload_length": claimed,
              "payload_checksum": "ab" * 32}
    data = forge.reframe(json.dumps(header).encode(), b"",
                         flags=blob.FLAG_SIGNED if signed else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as entry:
        entry.write(data)
        if sparse_size is not None:
            entry.truncate(sparse_size)


READ_ENTRY = """
import json, sys
from ember.cache import ModelCache
from ember.cache.key import entry_key
from ember.store.signing import signer
root, suffix, secret = sys.argv[1:4]
key = entry_key({"test": "forged"})
header, problem = ModelCache(root).read(key, suffix, signer(secret) if secret else None)
result = {"hit": header is not None, "problem": problem if isinstance(problem, str) else None}
"""


@pytest.mark.parametrize("suffix", [".blob", KERNEL_SUFFIX])
@pytest.mark.parametrize("secret", ["", KEY])
def test_a_sparse_entry_claiming_half_a_gigabyte_costs_no_memory(tmp_path, suffix, secret):
    key = entry_key({"test": "forged"})
    honest, forged = tmp_path / "honest", tmp_path / "forged"
    assert ModelCache(honest).write(key, FIELDS, b"x" * 4096, suffix,
                                    signer(secret) if secret else None) is None
    claimed = GIB // 2
    write_claim(forged / "blobs" / f"{key.digest}{suffix}", key, claimed, signed=bool(secret),
                sparse_size=claimed + 4096)  # the header's size: the claim matches the file
    normal = peak_kb(READ_ENTRY, str(honest), suffix, secret)
    attacked = peak_kb(READ_ENTRY, str(forged), suffix, secret)
    assert normal["hit"] and not attacked["hit"]
    assert "damaged" in attacked["problem"]
    assert attacked["peak_kb"] - normal["peak_kb"] < SLACK_KB, (normal, attacked)


def test_a_header_claiming_a_terabyte_is_damage_not_a_memory_error(tmp_path):
    model = ppocr_cls_path()
    cache_dir = tmp_path / "cache"
    ember.Core().compile_model(model, "TEMPLATE", {"CACHE_DIR": str(cache_dir)})
    (entry,) = (cache_dir / "blobs").glob("*.blob")
    fields, payload = forge.split(entry.read_bytes())
    fields["payload_length"] = 1 << 40
    forged = forge.reframe(json.dumps(fields).encode(), payload)
    entry.write_bytes(forged)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = ember.Core().compile_model(model, "TEMPLATE", {"CACHE_DIR": str(cache_dir)})
    assert compiled is not None
    assert any("damaged" in str(w.message) for w in caught if w.category is CacheWarning)
    with pytest.raises(ember.errors.BlobFormatError, match="header says"):
        blob.read_file(io.BytesIO(forged))  # a stream without a descriptor: sized by seeking


# -- a Redis manifest --------------------------------------------------------------------------

READ_REMOTE = """
import json, sys
from ember.cache.remote import RemoteSettings, RemoteTier
url, secret = sys.argv[1:3]
tier = RemoteTier(RemoteSettings.parse(url, secret or None))
data, problem = tier.get("f" * 64)
result = {"hit": data is not None, "problem": problem}
"""


@pytest.mark.parametrize("secret", ["", KEY])
def test_a_manifest_claiming_gigabytes_costs_no_memory(redis_url, redis_server, secret):
    client = redis_server.client()
    options = "" if secret else "?unsigned=1"
    normal = peak_kb(READ_REMOTE, redis_url + options, secret)  # no entry: the same work, less
    assert normal["problem"] is None
    claimed, chunk = 4 * GIB - 1, 512 << 20
    client.set("ember:manifest:" + "f" * 64, json.dumps({
        "v": 2, "upload": "0" * 32, "chunks": -(-claimed // chunk), "size": claimed,
        "chunk_size": chunk, "created": 0, "signature": "ab" * 32 if secret else ""}))
    client.set(f"ember:chunk:{'f' * 64}:{'0' * 32}:0", b"\0" * 4096)  # one short chunk
    by_default = peak_kb(READ_REMOTE, redis_url + options, secret)
    assert "max_entry" in by_default["problem"]
    allowed = redis_url + (options + "&" if options else "?") + "max_entry=4G"
    attacked = peak_kb(READ_REMOTE, allowed, secret)
    assert not attacked["hit"] and attacked["problem"]
    for run in (by_default, attacked):
        assert run["peak_kb"] - normal["peak_kb"] < SLACK_KB, (normal, run)


# -- a bundle's tar headers ----------------------------------------------------------------------


def extended_header(kind: bytes, claimed: int) -> bytes:
    """A tar header block of type ``kind`` (GNU long name "L", pax "x") claiming ``claimed``
    bytes of extended header data that is not there."""
    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = kind, claimed
    return info.tobuf(format=tarfile.GNU_FORMAT)


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE, tarfile.XGLTYPE])
def test_a_bundle_whose_extended_header_claims_a_terabyte_is_refused(tmp_path, kind):
    bundle = tmp_path / "forged.tar"
    bundle.write_bytes(extended_header(kind, 1 << 40) + b"\0" * 2048)
    assert bundle.stat().st_size < 4096
    with pytest.raises(BundleError, match="header"):
        import_bundle(tmp_path / "cache", bundle)
    assert not list((tmp_path / "cache" / "blobs").iterdir())


IMPORT_BUNDLE = """
import json, sys
from pathlib import Path
from ember.cli.bundle import import_bundle
try:
    import_bundle(Path(sys.argv[1]), Path(sys.argv[2]), max_size=1 << 20)
    result = {"error": None}
except Exception as exc:
    result = {"error": f"{type(exc).__name__}: {exc}"}
"""


def test_a_compressed_long_name_that_inflates_to_a_quarter_gigabyte_costs_no_memory(tmp_path):
    inflated = GIB // 4
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as out:
        out.write(extended_header(tarfile.GNUTYPE_LONGNAME, inflated))
        zeros = b"a" * (16 << 20)
        for _ in range(inflated // len(zeros)):
            out.write(zeros)
        out.write(b"\0" * 1024)
    assert bomb.stat().st_size < 2 << 20
    honest = tmp_path / "honest.tar.gz"
    with gzip.open(honest, "wb") as out:
        out.write(b"\0" * 1024)  # an empty tar: refused for holding no blob
    normal = peak_kb(IMPORT_BUNDLE, str(tmp_path / "cache"), str(honest))
    attacked = peak_kb(IMPORT_BUNDLE, str(tmp_path / "cache"), str(bomb))
    assert "BundleError" in attacked["error"] and "header" in attacked["error"]
    assert attacked["peak_kb"] - normal["peak_kb"] < SLACK_KB, (normal, attacked)
