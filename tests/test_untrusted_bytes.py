"""Every byte read back is untrusted (a cache, a store or a fleet server may be written by anyone
who can reach it): the cases found by forging entries as an attacker would, each against the real
parts (real models and plugins, real tar files, a real redis-server): signed caches refuse
substitutes, forged manifests and bundles cost one warning or one error line, and the input and
model-file cases are Ember errors naming what is wrong."""

import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
import warnings

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import ember
from ember.cache import KernelCache, ModelCache
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.cache.file_digest import RACY_SECONDS
from ember.cli.bundle import BundleError, export_bundle, import_bundle
from ember.cli.main import cli as ember_cli
from ember.errors import (
    BlobFormatError,
    CacheWarning,
    EmberError,
    InferenceInputError,
    InvalidModelError,
)
from ember.store import blob
from ember.store.atomic import background
from ember.store.models import StoreFileError, _read_locations
from ember.store.signing import Signer
from ember.testing import forge, ppocr_cls_path
from ember.testing.models import dense_stack, mlp

KEY = "the-signing-key"


@pytest.fixture(scope="module", autouse=True)
def admit_every_compile():
    """The entries these tests forge must exist whatever a compile took: admission by timing is
    not what is tested here (core/tests/test_cache.py tests it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ADMIT_ALL_ENV, "1")
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name, seed in (("a", 0), ("b", 1)):
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(dense_stack(2, 512, seed).SerializeToString())
    return paths


def compile_(model, cache_dir, key=KEY, device="TEMPLATE", **extra):
    config = {"CACHE_DIR": str(cache_dir), **extra}
    if key is not None:
        config["CACHE_SIGNING_KEY"] = key
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = ember.Core().compile_model(model, device, config)
    return compiled, [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def run(compiled):
    return compiled(np.ones((1, 512), np.float32))[0]


def entry_of(cache_dir):
    (path,) = (cache_dir / "blobs").glob("*.blob")
    return path


def substitute(victim_entry, donor_entry, signer=None):
    """The donor's payload under the victim's key and header, checksums (and, holding a key,
    the signature) recomputed: what an attacker with write access to CACHE_DIR can make."""
    fields, _ = forge.split(victim_entry.read_bytes())
    _, payload = forge.split(donor_entry.read_bytes())
    victim_entry.write_bytes(forge.reframe(fields, payload, signer=signer, key=fields["key"]))


# -- signed local caches -------------------------------------------------------------------------


@pytest.mark.parametrize("forger_key", [None, "another-key"])
def test_signed_cache_refuses_a_substituted_entry(tmp_path, models, forger_key):
    reference = run(ember.Core().compile_model(models["a"], "TEMPLATE"))
    compile_(models["a"], tmp_path / "a")
    compile_(models["b"], tmp_path / "b")
    substitute(entry_of(tmp_path / "a"), entry_of(tmp_path / "b"),
               Signer(forger_key) if forger_key else None)
    compiled, problems = compile_(models["a"], tmp_path / "a")
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and ("signed" in problems[0] or "signature" in problems[0])
    np.testing.assert_array_equal(run(compiled), reference)
    again, problems = compile_(models["a"], tmp_path / "a")  # the entry was replaced, signed
    assert again.get_property("LOADED_FROM_CACHE") is True and problems == []
    np.testing.assert_array_equal(run(again), reference)


def test_without_a_key_a_cache_directory_is_as_trustworthy_as_its_writers(tmp_path, models):
    """What docs/caching.md says: unsigned, a substituted entry with recomputed checksums is
    loaded. This is the threat model, tested so that the docs stay true."""
    compile_(models["a"], tmp_path / "a", key=None)
    compile_(models["b"], tmp_path / "b", key=None)
    substitute(entry_of(tmp_path / "a"), entry_of(tmp_path / "b"))
    compiled, _ = compile_(models["a"], tmp_path / "a", key=None)
    assert compiled.get_property("LOADED_FROM_CACHE") is True
    donor = run(ember.Core().compile_model(models["b"], "TEMPLATE"))
    np.testing.assert_array_equal(run(compiled), donor)


def test_unsigned_entries_are_refused_once_a_key_is_set_and_signed_ones_read_without(tmp_path,
                                                                                     models):
    compile_(models["a"], tmp_path / "c", key=None)
    compiled, problems = compile_(models["a"], tmp_path / "c")
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "not signed" in problems[0]
    assert blob.is_signed(entry_of(tmp_path / "c").read_bytes())
    unsigned_reader, problems = compile_(models["a"], tmp_path / "c", key=None)
    assert unsigned_reader.get_property("LOADED_FROM_CACHE") is True and problems == []


def test_a_forged_file_digest_memo_cannot_redirect_a_model_to_another_entry(tmp_path, models):
    age = time.time() - models["b"].stat().st_ctime
    time.sleep(max(RACY_SECONDS + 0.1 - age, 0))  # digests of files this new are not remembered
    compile_(models["a"], tmp_path / "d")
    compile_(models["b"], tmp_path / "d")
    background.wait()  # the memos are written by the background worker
    memos = {json.loads(p.read_text())["path"]: p for p in (tmp_path / "d" / "files").iterdir()}
    a, b = (str(models[name].resolve()) for name in "ab")
    memo_a, memo_b = json.loads(memos[a].read_text()), json.loads(memos[b].read_text())
    assert "mac" in memo_a
    memos[a].write_text(json.dumps({**memo_a, "digest": memo_b["digest"]}))
    compiled, _ = compile_(models["a"], tmp_path / "d")
    reference = run(ember.Core().compile_model(models["a"], "TEMPLATE"))
    np.testing.assert_array_equal(run(compiled), reference)


def test_kernel_entries_are_verified_before_the_plugin_sees_them(tmp_path):
    cache = ModelCache(tmp_path)
    kernels = KernelCache(cache, plugin="ember-gpu", plugin_version="1", device="GPU.0",
                          signer=Signer(KEY))
    key = kernels.key({"source": "__kernel void k() {}"})
    binary = b"EMBERCL\x01" + bytes(range(256)) * 64
    assert kernels.put(key, binary)
    assert bytes(kernels.get(key)) == binary
    path = cache.blob_path(key.digest, ".cl_cache")
    fields, payload = forge.split(path.read_bytes())
    path.write_bytes(forge.reframe(fields, payload[:100]))  # truncated, checksums recomputed
    assert kernels.get(key) is None
    assert "not signed" in kernels.problems[-1]
    path.write_bytes(forge.reframe(fields, payload[:100], signer=Signer("x"), key=key.digest))
    assert kernels.get(key) is None and "does not verify" in kernels.problems[-1]


GPU_PROGRAM = """
import sys, warnings
import numpy as np
import ember
from ember.testing.models import mlp
warnings.simplefilter("ignore")
compiled = ember.Core().compile_model(mlp().SerializeToString(), "GPU",
    {"CACHE_DIR": sys.argv[1], "CACHE_SIGNING_KEY": "k"})
print(float(compiled(np.ones((2, 16), np.float32))[0].sum()))
"""


def test_a_forged_gpu_kernel_entry_never_reaches_the_driver(tmp_path):
    first = subprocess.run([sys.executable, "-c", GPU_PROGRAM, str(tmp_path)],
                           capture_output=True, text=True, check=True).stdout
    entries = list((tmp_path / "blobs").glob("*.cl_cache"))
    assert entries
    for entry in entries:  # truncated binaries: SIGSEGV in the driver, without a key
        fields, payload = forge.split(entry.read_bytes())
        entry.write_bytes(forge.reframe(fields, payload[:len(payload) // 3]))
    second = subprocess.run([sys.executable, "-c", GPU_PROGRAM, str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout == first


# -- bundles ---------------------------------------------------------------------------------------


def tar_with(path, name, data, *, size=None, sparse=False, mode="w"):
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        if sparse:
            info.type = tarfile.GNUTYPE_SPARSE
        tar.addfile(info, io.BytesIO(data))
    if size is not None:  # rewrite the declared size in the member's header (octal, 11 digits)
        raw = bytearray(path.read_bytes())
        raw[124:136] = f"{size:011o}\0".encode()
        checksum = sum(raw[:148]) + 8 * 32 + sum(raw[156:512])
        raw[148:156] = f"{checksum:06o}\0 ".encode()
        path.write_bytes(bytes(raw))
    return path


@pytest.fixture(scope="module")
def signed_cache(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("signed")
    compile_(models["a"], folder)
    return folder


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_sparse_member_declaring_gigabytes_is_refused_at_once(tmp_path, signed_cache):
    name = entry_of(signed_cache).name
    before = peak_rss_mb()
    bundle = tar_with(tmp_path / "sparse.tar", name, b"x" * 10_000, size=3 << 30)
    with pytest.raises(BundleError, match="refusing"):
        import_bundle(tmp_path / "target", bundle)
    sparse = tar_with(tmp_path / "sparse2.tar", name, b"", sparse=True)
    with pytest.raises(BundleError):
        import_bundle(tmp_path / "target", sparse)
    assert peak_rss_mb() - before < 200
    assert not list((tmp_path / "target").glob("blobs/*"))


def test_a_compressed_bundle_cannot_inflate_past_its_limits(tmp_path, signed_cache):
    entry = entry_of(signed_cache)
    bomb = tar_with(tmp_path / "bomb.tar.gz", entry.name, bytes(64 << 20), mode="w:gz")
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(BundleError, match="not an intact Ember blob"):
        import_bundle(tmp_path / "target", bomb)
    big = tar_with(tmp_path / "big.tar", entry.name, entry.read_bytes())
    with pytest.raises(BundleError, match="--max-size"):
        import_bundle(tmp_path / "target", big, max_size=1000)
    longer = tar_with(tmp_path / "longer.tar", entry.name, entry.read_bytes() + b"x" * 64)
    with pytest.raises(BundleError, match="its header says"):
        import_bundle(tmp_path / "target", longer)


def test_signed_bundles(tmp_path, models, signed_cache):
    signer = Signer(KEY)
    export_bundle(signed_cache, tmp_path / "signed.tar", signer)
    assert import_bundle(tmp_path / "ok", tmp_path / "signed.tar", signer=signer).added
    compiled, problems = compile_(models["a"], tmp_path / "ok")
    assert compiled.get_property("LOADED_FROM_CACHE") is True and problems == []
    with pytest.raises(BundleError, match="does not verify"):
        import_bundle(tmp_path / "other", tmp_path / "signed.tar", signer=Signer("other"))
    compile_(models["a"], tmp_path / "plain", key=None)
    export_bundle(tmp_path / "plain", tmp_path / "plain.tar")
    with pytest.raises(BundleError, match="not signed"):
        import_bundle(tmp_path / "refused", tmp_path / "plain.tar", signer=signer)
    assert not list((tmp_path / "refused").glob("blobs/*"))
    report = import_bundle(tmp_path / "trusted", tmp_path / "plain.tar", signer=signer,
                           trust_unsigned=True)
    assert report.added and blob.is_signed(entry_of(tmp_path / "trusted").read_bytes())
    compiled, problems = compile_(models["a"], tmp_path / "trusted")
    assert compiled.get_property("LOADED_FROM_CACHE") is True and problems == []


def test_cli_import_refuses_an_unsigned_bundle_unless_trusted(tmp_path, models, monkeypatch):
    compile_(models["a"], tmp_path / "plain", key=None)
    export_bundle(tmp_path / "plain", tmp_path / "plain.tar")
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", KEY)
    runner = CliRunner()
    args = ["cache", "import", str(tmp_path / "plain.tar"), "--cache-dir", str(tmp_path / "t")]
    refused = runner.invoke(ember_cli, args)
    assert refused.exit_code == 1 and "not signed" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert runner.invoke(ember_cli, [*args, "--trust-unsigned"]).exit_code == 0


# -- the Redis tier ------------------------------------------------------------------------------


@pytest.fixture
def published(tmp_path, models, redis_url, redis_server):
    from ember.cache import remote

    remote._down_until.clear()  # a tier another test's timeout marked down (a busy machine)
    compile_(models["a"], tmp_path / "writer", CACHE_REMOTE=redis_url)
    background.wait()
    client = redis_server.client()
    (manifest,) = client.keys("ember:manifest:*")
    return client, manifest


FORGED_MANIFESTS = {
    "non-ASCII signature": lambda m: {**m, "signature": "é" * 64},
    "signature of the wrong length": lambda m: {**m, "signature": "ab"},
    "ten million chunks": lambda m: {**m, "chunks": 10_000_000, "size": 1 << 40},
    "chunks as a string": lambda m: {**m, "chunks": "1"},
    "size out of range": lambda m: {**m, "size": -1},
    "upload as a list": lambda m: {**m, "upload": ["x"]},
    "a list": lambda m: [m],
    "deep": lambda m: json.loads("[" * 500 + "]" * 500),
}


@pytest.mark.parametrize("forgery", sorted(FORGED_MANIFESTS))
def test_a_forged_manifest_costs_one_warning(tmp_path, models, redis_url, published, forgery):
    client, manifest = published
    good = json.loads(client.get(manifest))
    client.set(manifest, json.dumps(FORGED_MANIFESTS[forgery](good)))
    compiled, problems = compile_(models["a"], tmp_path / "victim", CACHE_REMOTE=redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    assert len(problems) == 1 and "refused" in problems[0]
    background.wait()


@pytest.mark.parametrize("value", [b"\xff\xfe", b"{" * 100_000, b"1e999", b"null"])
def test_arbitrary_bytes_in_a_manifest_never_fail_a_start(tmp_path, models, redis_url,
                                                          published, value):
    client, manifest = published
    client.set(manifest, value)
    compiled, problems = compile_(models["a"], tmp_path / "v", CACHE_REMOTE=redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False and len(problems) == 1


def test_keys_of_other_types_never_fail_a_start(tmp_path, models, redis_url, published):
    client, manifest = published
    (chunk,) = client.keys("ember:chunk:*")
    client.delete(chunk)
    client.hset(chunk, "field", "value")  # a GET of it is a WRONGTYPE error reply
    compiled, problems = compile_(models["a"], tmp_path / "v1", CACHE_REMOTE=redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False and len(problems) == 1
    client.delete(manifest)
    client.rpush(manifest, "a list")
    compiled, problems = compile_(models["a"], tmp_path / "v2", CACHE_REMOTE=redis_url)
    assert compiled.get_property("LOADED_FROM_CACHE") is False and len(problems) == 1


def test_a_huge_forged_chunk_count_costs_the_next_writer_nothing(tmp_path, models, redis_url,
                                                                 published):
    client, manifest = published
    good = json.loads(client.get(manifest))
    client.set(manifest, json.dumps({**good, "chunks": 10_000_000, "size": 4 << 30,
                                     "chunk_size": 64 << 10}))
    client.config_resetstat()
    compile_(models["a"], tmp_path / "writer2", CACHE_REMOTE=redis_url)  # refuses, rewrites
    background.wait()
    deletes = client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    assert deletes <= 1


# -- listings, statistics and the store ------------------------------------------------------------


def test_listings_and_statistics_survive_forged_files(tmp_path, models):
    compile_(models["a"], tmp_path / "c", key=None)
    fields, payload = forge.split(entry_of(tmp_path / "c").read_bytes())
    foreign = tmp_path / "c" / "blobs" / ("0" * 64 + ".blob")
    foreign.write_bytes(forge.reframe(forge.with_raw(fields, ["key_parts"],
                                                     b"[" * 5000 + b"]" * 5000), payload))
    (tmp_path / "c" / "blobs" / ("1" * 64 + ".blob")).write_bytes(forge.reframe(
        {**fields, "device": 7, "key_parts": {"model": fields["key_parts"]["model"],
                                              "properties": [1]}}, payload))
    with open(tmp_path / "c" / "events.log", "ab") as log:
        log.write(b'{"event": "hit", "bytes": "many"}\n[1e999]\n\xff\n{"event": ["x"]}\n'
                  + b"[" * 100_000 + b"\n")
    runner = CliRunner()
    for command in ("ls", "stats", "verify"):
        result = runner.invoke(ember_cli, ["cache", command, "--cache-dir",
                                           str(tmp_path / "c"), "--json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), command
    listed = json.loads(runner.invoke(ember_cli, ["cache", "ls", "--cache-dir",
                                                  str(tmp_path / "c"), "--json"]).output)
    assert len(listed["entries"]) == 3
    compiled, _ = compile_(models["a"], tmp_path / "c", key=None)  # explain_miss reads them
    assert compiled.get_property("LOADED_FROM_CACHE") is True


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff\xfe{}", b'{"locations": 1e999}',
                                     b'{"locations": {"a": ' * 50 + b"1" + b"}" * 50])
def test_a_hand_edited_store_file_is_an_ember_error_naming_it(tmp_path, content):
    (tmp_path / ".locations.json").write_bytes(content)
    with pytest.raises(StoreFileError, match=r"\.locations\.json"):
        _read_locations(tmp_path)


# -- inputs and model files ------------------------------------------------------------------------


def test_a_ragged_input_is_an_inference_input_error_naming_it():
    compiled = ember.Core().compile_model(mlp().SerializeToString(), "CPU")
    with pytest.raises(InferenceInputError, match="input 'x'"):
        compiled([[1.0, 2.0], [3.0]])


def test_template_on_an_image_too_small_for_a_pool_names_the_node_and_the_input():
    compiled = ember.Core().compile_model(ppocr_cls_path(), "TEMPLATE")
    with pytest.raises(InferenceInputError, match=r"MaxPool.*'x' \[1, 3, 1, 1\]"):
        compiled(np.zeros((1, 3, 1, 1), np.float32))


def test_external_data_missing_or_outside_the_models_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    for name, location in (("missing", "w.bin"), ("outside", "../w.bin")):
        proto = dense_stack(1, 16)
        onnx.save_model(proto, tmp_path / "sub" / f"{name}.onnx", save_as_external_data=True,
                        location=f"{name}.bin", size_threshold=0)
        os.replace(tmp_path / "sub" / f"{name}.bin", tmp_path / "w.bin")
        raw = onnx.load(tmp_path / "sub" / f"{name}.onnx", load_external_data=False)
        for tensor in raw.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        (tmp_path / "sub" / f"{name}.onnx").write_bytes(raw.SerializeToString())
        with pytest.raises(InvalidModelError, match=f"{name}.onnx.*external data"):
            ember.Core().compile_model(tmp_path / "sub" / f"{name}.onnx", "TEMPLATE",
                                       {"CACHE_DIR": str(tmp_path / "cache")})


# -- plugin payloads fail at import, not at the first inference ----------------------------------


def test_a_cpu_payload_whose_ports_are_not_its_graphs_is_refused_at_import():
    data = ember.Core().compile_model(mlp().SerializeToString(), "CPU").export_model()
    fields, payload = forge.split(data)
    payload = payload.replace(b'"name": "x"', b'"name": "y"', 1)
    assert b'"y"' in payload
    with pytest.raises(BlobFormatError, match="not those of its saved graph"):
        ember.Core().import_model(forge.reframe(fields, payload), "CPU")


def test_a_template_plan_reading_a_slot_nothing_wrote_is_refused_at_import():
    from ember_template import plan_format

    compiled = ember.Core().compile_model(mlp().SerializeToString(), "TEMPLATE")
    plan = compiled.device_model.plan
    plan.steps[0] = type(plan.steps[0])(**{**plan.steps[0].__dict__,
                                           "inputs": (plan.num_slots - 1,)})
    with pytest.raises(BlobFormatError, match="which nothing wrote before it"):
        plan_format.loads(plan_format.dumps(plan))


def test_every_refusal_is_an_ember_error():
    for data in (b"", b"EMBERBLB" + bytes(100), forge.reframe(b"[" * 10_000, b"")):
        with pytest.raises(EmberError):
            blob.unpack(data)
