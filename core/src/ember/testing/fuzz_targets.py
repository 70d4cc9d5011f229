"""The fuzz targets of ember_devtools.fuzz (kept in the core, beside what they read, since they
reach into its internal parsers): one per format Ember reads back, each with valid inputs
made once by the real parts (models compiled by the real plugins, a signed cache entry, a kernel
entry, a tar, a manifest, the store's files) and a forger that changes them as an attacker would
(ember.testing.forge), checksums recomputed."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import EmberError
from ember.testing import forge

KEY = "fuzz-signing-key"


@dataclass
class Target:
    """One format: ``forge(rng)`` makes an input, ``check(data)`` reads it; the check raises an
    EmberError to refuse, returns "accepted" or "wrong"."""

    name: str
    forge: Callable[[random.Random], bytes]
    check: Callable[[bytes], str]



# -- the targets ---------------------------------------------------------------------------------


class Fixtures:
    """Valid inputs made once per process: compiled models, entries, a tar, a manifest."""

    def __init__(self, work: Path) -> None:
        import ember
        from ember.store.signing import Signer
        from ember.testing.models import cnn, mlp

        self.work = work
        self.core = ember.Core()
        self.signer = Signer(KEY)
        self.other_signer = Signer("not-" + KEY)
        self.models: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.compiled: dict[str, Any] = {}
        for device in ("TEMPLATE", "CPU"):
            for name, proto in (("mlp", mlp(features=8, hidden=8, classes=3)),
                                ("cnn", cnn(channels=2, size=6, classes=3))):
                compiled = self.core.compile_model(proto.SerializeToString(), device)
                self.blobs[f"{device}/{name}"] = compiled.export_model()
                self.compiled[f"{device}/{name}"] = compiled
        self.cache_dir = work / "cache"
        self.entry_key, self.entry = self._cache_entry(signed=True)

    def _cache_entry(self, *, signed: bool) -> tuple[str, bytes]:
        """A signed TEMPLATE cache entry, as compile_model writes it."""
        from ember.testing.models import mlp

        path = self.work / "model.onnx"
        path.write_bytes(mlp(features=8, hidden=8, classes=3).SerializeToString())
        config = {"CACHE_DIR": str(self.cache_dir)}
        if signed:
            config["CACHE_SIGNING_KEY"] = KEY
        for _ in range(2):
            self.core.compile_model(path, "TEMPLATE", config)
        (entry,) = (self.cache_dir / "blobs").glob("*.blob")
        return entry.stem, entry.read_bytes()


def _inputs_for(compiled: Any) -> list[np.ndarray] | None:
    arrays = []
    for port in compiled.inputs:
        if not port.is_static or math.prod(port.shape) > 1 << 16:
            return None
        arrays.append(np.ones(port.shape, port.dtype))
    return arrays


def _use(compiled: Any) -> str:
    inputs = _inputs_for(compiled)
    if inputs is not None:
        compiled(inputs)
    return "accepted"


def _forge_blob(rng: random.Random, data: bytes, *, payload_json: bool) -> bytes:
    """A forged blob: its header, its payload's JSON or its bytes changed, checksums redone."""
    fields, payload = forge.split(data)
    choice = rng.random()
    if choice < 0.3:
        return forge.reframe(forge.mutate_json(rng, fields), payload)
    if choice < 0.6 and payload_json:
        return forge.reframe(fields, _mutate_payload_json(rng, payload))
    if choice < 0.9:
        return forge.reframe(fields, forge.mutate_bytes(rng, payload))
    return forge.mutate_bytes(rng, data)  # raw damage, checksums not redone


def _mutate_payload_json(rng: random.Random, payload: bytes) -> bytes:
    """Change the JSON inside a TEMPLATE plan or a CPU payload, keeping its framing valid."""
    import struct

    from ember.contract.framing import read_frame, write_frame

    # the frame's trailer: kind (8 bytes), version, flags, section count, magic
    # (ember.contract.framing)
    kind = payload[-28:-20]
    version, flags, count = struct.unpack_from("<III", payload, len(payload) - 20)
    sections = [bytes(s) for s in read_frame(payload, kind, version, sections=count,
                                             known_flags=flags).sections]
    index = 0 if kind == b"EMTPLAN\0" else 1  # TEMPLATE: its topology; CPU: its ports
    sections[index] = forge.mutate_json(rng, json.loads(sections[index]))
    return write_frame(kind, version, sections, flags=flags)


def targets(work: Path, *, redis_url: str | None = None) -> list[Target]:
    """Every fuzz target, built in ``work``."""
    fx = Fixtures(work)
    found = []
    for device in ("TEMPLATE", "CPU"):
        seeds = [fx.blobs[f"{device}/{name}"] for name in ("mlp", "cnn")]

        def forge_payload(rng: random.Random, seeds: list[bytes] = seeds) -> bytes:
            return _forge_blob(rng, rng.choice(seeds), payload_json=True)

        def check_payload(data: bytes, device: str = device) -> str:
            return _use(fx.core.import_model(data, device))

        found.append(Target(f"{device.lower()}-payload", forge_payload, check_payload))
    found.append(_container_target(fx))
    found.append(_signed_entry_target(fx))
    found.append(_kernel_entry_target(fx))
    found.append(_bundle_target(fx))
    found.append(_manifest_target(fx, redis_url))
    found.append(_store_json_target(fx))
    found.append(_onnx_header_target(fx))
    found.append(_plugin_index_target(fx))
    return found


def _container_target(fx: Fixtures) -> Target:
    from ember.cache import ModelCache
    from ember.store import blob

    seeds = [*fx.blobs.values(), fx.entry]
    listing = fx.work / "listing"
    (listing / "blobs").mkdir(parents=True)

    def check(data: bytes) -> str:
        from ember.cache.key import CacheKey

        # a file read with the sizes its header claims compared to what the file holds, from a
        # stream and from the cache directory (an unsigned entry under its file's key)
        with contextlib.suppress(EmberError):
            blob.read_file(io.BytesIO(data))
        entry = listing / "blobs" / (("0" * 64) + ".blob")
        entry.write_bytes(data)
        ModelCache(listing).read(CacheKey({}, "0" * 64))
        header, _payload = blob.unpack(data)
        # what the listings and a miss's explanation do with a header
        ModelCache(listing).entries()
        from ember.cache.key import explain_difference

        explain_difference({"model": "m", "properties": {}}, header.key_parts)
        return "accepted"

    return Target("container", lambda rng: _forge_blob(rng, rng.choice(seeds),
                                                       payload_json=False), check)


def _signed_entry_target(fx: Fixtures) -> Target:
    """A signed cache: forged entries (another model's payload under this key, changed fields,
    signed with another key or not at all) must never be read as a hit."""
    from ember.cache import ModelCache
    from ember.cache.key import CacheKey

    cache = ModelCache(fx.cache_dir)
    key = CacheKey({}, fx.entry_key)
    others = [d for name, d in fx.blobs.items() if name.startswith("TEMPLATE")]

    def forge_entry(rng: random.Random) -> bytes:
        fields, payload = forge.split(fx.entry)
        choice = rng.random()
        if choice < 0.3:  # another model's payload, under this model's key
            payload = forge.split(rng.choice(others))[1]
        elif choice < 0.6:
            return forge.reframe(forge.mutate_json(rng, fields), payload,
                                 signer=rng.choice((None, fx.other_signer)), key=fx.entry_key)
        else:
            payload = forge.mutate_bytes(rng, payload)
        return forge.reframe(fields, payload, signer=rng.choice((None, fx.other_signer)),
                             key=fx.entry_key)

    def check(data: bytes) -> str:
        path = cache.blob_path(fx.entry_key)
        try:
            # the same bytes followed by a hole: read in bounded pieces first, and refused (a
            # file with holes is never what was signed)
            with open(path, "wb") as entry:
                entry.write(data)
                entry.truncate(len(data) + (1 << 20) + (64 << 10))  # just past the slack
            if cache.read(key, signer=fx.signer)[0] is not None:
                return "wrong"
            path.write_bytes(data)
            header, _payload = cache.read(key, signer=fx.signer)
        finally:
            path.write_bytes(fx.entry)
        if header is None:
            raise EmberError("refused")
        return "accepted" if data == fx.entry else "wrong"

    return Target("signed-entry", forge_entry, check)


def _kernel_entry_target(fx: Fixtures) -> Target:
    """GPU kernel entries (``.cl_cache``): with a key, a forged one never reaches the plugin."""
    from ember.cache import KernelCache, ModelCache

    cache = ModelCache(fx.work / "kernels")
    kernels = KernelCache(cache, plugin="ember-gpu", plugin_version="0", device="GPU.0",
                          signer=fx.signer)
    key = kernels.key({"source": "kernel"})
    binary = b"EMBERCL\x01" + bytes(range(256)) * 8
    kernels.put(key, binary, name="k")
    entry = cache.blob_path(key.digest, ".cl_cache").read_bytes()

    def forge_entry(rng: random.Random) -> bytes:
        fields, payload = forge.split(entry)
        header: dict[str, Any] | bytes = fields
        if rng.random() < 0.5:
            payload = payload[:rng.randrange(len(payload))]  # a truncated binary
        else:
            header = forge.mutate_json(rng, fields) if rng.random() < 0.5 else fields
            payload = forge.mutate_bytes(rng, payload)
        return forge.reframe(header, payload, signer=rng.choice((None, fx.other_signer)),
                             key=key.digest)

    def check(data: bytes) -> str:
        path = cache.blob_path(key.digest, ".cl_cache")
        path.write_bytes(data)
        try:
            payload = kernels.get(key)
        finally:
            path.write_bytes(entry)
            kernels.problems.clear()
        if payload is None:
            raise EmberError("refused")
        return "accepted" if bytes(payload) == binary else "wrong"

    return Target("kernel-entry", forge_entry, check)


def _bundle_target(fx: Fixtures) -> Target:
    from ember.cli.bundle import import_bundle

    members = [(f"{fx.entry_key}.blob", fx.entry)]
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    seed = plain.getvalue()
    bundle = fx.work / "bundle.tar"
    counter = iter(range(1 << 62))

    def forge_bundle(rng: random.Random) -> bytes:
        choice = rng.random()
        if choice < 0.4:  # a forged member inside a well-formed tar
            fields, payload = forge.split(fx.entry)
            if rng.random() < 0.5:
                payload = forge.mutate_bytes(rng, payload)
            else:
                fields = {**fields, "model_name": "forged"}
            member = forge.reframe(fields, payload, signer=rng.choice((None, fx.other_signer)),
                                   key=fx.entry_key)
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w") as tar:
                info = tarfile.TarInfo(f"{fx.entry_key}.blob")
                info.size = len(member)
                tar.addfile(info, io.BytesIO(member))
            return out.getvalue()
        if choice < 0.6:  # extended headers (GNU long names, pax) claiming any size
            kind = rng.choice((tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                               tarfile.XHDTYPE, tarfile.XGLTYPE))
            info = tarfile.TarInfo("././@LongLink")
            info.type, info.size = kind, rng.choice((0, 100, 1 << 20, 3 << 20, 1 << 40,
                                                     (1 << 63) - 1, rng.randrange(1 << 16)))
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1024)))
            data = info.tobuf(format=tarfile.GNU_FORMAT) + body + b"\0" * (-len(body) % 512)
            return data + seed
        if choice < 0.7:  # the same, compressed (a decompression bomb is refused unread)
            import gzip

            return gzip.compress(forge.mutate_bytes(rng, seed), compresslevel=1)
        return forge.mutate_bytes(rng, seed)  # the tar's own headers (sizes, types, names)

    def check(data: bytes) -> str:
        bundle.write_bytes(data)
        target = fx.work / f"imported-{next(counter) % 4}"
        shutil.rmtree(target, ignore_errors=True)
        report = import_bundle(target, bundle, signer=fx.signer, max_size=64 << 20)
        placed = [p.read_bytes() for p in (target / "blobs").glob("*.blob")]
        if report.added and any(p != fx.entry for p in placed):
            return "wrong"
        return "accepted"

    return Target("bundle", forge_bundle, check)


def _manifest_target(fx: Fixtures, redis_url: str | None) -> Target:
    """Redis manifests: parsed directly, and through a real server when ``redis_url`` is given
    (then a start must never fail: the tier answers with a problem, never an exception)."""
    from ember.cache.remote import RemoteSettings, RemoteTier, manifest_fields

    manifest = {"v": 2, "upload": "0" * 32, "chunks": 1, "size": len(fx.entry),
                "chunk_size": 4 << 20, "created": 1.0, "signature": fx.entry[-32:].hex()}
    tier = (RemoteTier(RemoteSettings.parse(f"{redis_url}?prefix=fuzz&timeout=5", KEY))
            if redis_url else None)
    if tier is not None:
        tier.client.set(f"fuzz:chunk:{fx.entry_key}:{'0' * 32}:0", fx.entry)

    def forge_manifest(rng: random.Random) -> bytes:
        if rng.random() < 0.8:
            return forge.mutate_json(rng, manifest)
        return forge.mutate_bytes(rng, json.dumps(manifest).encode())

    def check(data: bytes) -> str:
        manifest_fields(data, signed=False)
        fields = manifest_fields(data, signed=True)
        if tier is not None:
            tier.client.set(f"fuzz:manifest:{fx.entry_key}", data)
            entry, problem = tier.get(fx.entry_key)
            if entry is None:
                raise EmberError(problem or "absent")
            return "accepted" if bytes(entry) == fx.entry else "wrong"
        return "accepted" if fields else "refused"

    return Target("manifest", forge_manifest, check)


def _store_json_target(fx: Fixtures) -> Target:
    """The store's .locations.json, remembered file digests and events.log lines."""
    from ember.cache import ModelCache
    from ember.cache.file_digest import read_memo
    from ember.store.models import LOCATIONS_FILE, _read_locations

    store = fx.work / "store"
    store.mkdir()
    events_cache = ModelCache(fx.work / "events")
    events_cache.root.mkdir()
    seeds = [
        json.dumps({"version": 1, "locations": {"ppocr": "/models/ppocr.onnx"}}).encode(),
        json.dumps({"path": "/m.onnx", "identity": [1, 2, 3, 4, 5], "external": [],
                    "digest": "0" * 64}).encode(),
        json.dumps({"event": "hit", "key": "0" * 64, "time": 1.0, "bytes": 10,
                    "saved": 0.5}).encode(),
        json.dumps({"event": "summary", "hits": 3, "bytes_read": 30}).encode(),
    ]

    def forge_json(rng: random.Random) -> bytes:
        seed = rng.choice(seeds)
        if rng.random() < 0.7:
            return forge.mutate_json(rng, json.loads(seed))
        return forge.mutate_bytes(rng, seed)

    def check(data: bytes) -> str:
        (store / LOCATIONS_FILE).write_bytes(data)
        memo = fx.work / "memo.json"
        memo.write_bytes(data)
        read_memo(memo)
        Path(events_cache.root, "events.log").write_bytes(data + b"\n" + data)
        events_cache.stats()
        _read_locations(store)
        return "accepted"

    return Target("store-json", forge_json, check)




def _onnx_header_target(fx: Fixtures) -> Target:
    """ONNX files, read as read_model reads them (the header, from bytes and from a file read
    in pages): forged ones are refused with InvalidModelError, or read exactly as onnx's full
    parse reads them (same ports, opsets, metadata and name) when onnx parses them too."""
    import onnx

    import ember
    from ember.testing.models import cnn, mlp

    small = mlp(features=3, hidden=2, classes=2)
    small.metadata_props.add(key="author", value="fuzz")
    small.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    with_weights_as_inputs = cnn(channels=1, size=4, classes=2)
    with_weights_as_inputs.graph.input.extend(  # old exporters list weights as inputs too
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in with_weights_as_inputs.graph.initializer[:2])
    seeds = [m.SerializeToString() for m in (small, with_weights_as_inputs)]
    path = fx.work / "forged.onnx"

    def forge_model(rng: random.Random) -> bytes:
        return forge.mutate_bytes(rng, rng.choice(seeds))

    def check(data: bytes) -> str:
        path.write_bytes(data)
        outcomes = []
        for source in (data, path):
            try:
                model = ember.Core().read_model(source)
            except ember.errors.InvalidModelError as exc:
                outcomes.append(exc)
                continue
            outcomes.append((model.inputs, model.outputs, model.opsets, model.metadata,
                             model.friendly_name.replace("forged", "model")))
        if type(outcomes[0]) is not type(outcomes[1]):
            return "wrong"  # a file and its bytes must read alike
        if isinstance(outcomes[0], EmberError):
            raise outcomes[0]
        try:
            proto = onnx.load_from_string(data)
        except Exception:  # refused later, when the graph is parsed
            return "accepted"
        return "accepted" if outcomes[0] == _reference(proto) else "wrong"

    return Target("onnx-header", forge_model, check)


def _reference(proto: Any) -> tuple[Any, ...]:
    """What onnx's full parse says a model's header is (the way Ember read it before it had a
    reader of its own)."""
    import onnx

    from ember.model.port import Port

    def port(value_info: Any, index: int) -> Port:
        tensor_type = value_info.type.tensor_type
        dims: list[Any] = []
        for dim in tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value > 0:
                dims.append(int(dim.dim_value))
            elif dim.HasField("dim_param") and dim.dim_param not in ("", "?"):
                dims.append(dim.dim_param)
            else:
                dims.append(None)
        kind = tensor_type.elem_type or onnx.TensorProto.FLOAT
        return Port(value_info.name, tuple(dims),
                    np.dtype(onnx.helper.tensor_dtype_to_np_dtype(kind)), index)

    weights = {t.name for t in proto.graph.initializer}
    inputs = [port(v, i) for i, v in enumerate(
        v for v in proto.graph.input if v.name not in weights)]
    outputs = [port(v, i) for i, v in enumerate(proto.graph.output)]
    opsets = {entry.domain: entry.version for entry in proto.opset_import}
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    return inputs, outputs, opsets, metadata, proto.graph.name or "model"


def _plugin_index_target(fx: Fixtures) -> Target:
    """The plugin index (``<store>/.plugins/*.json``): any bytes give records or a scan, never
    an exception (``_read_index`` says None, and finding the plugins then scans)."""
    import os

    from ember._version import __version__
    from ember.contract import plugin_index

    group = "ember.devices"
    records = plugin_index._scan(group)
    index = fx.work / "plugin-index.json"
    document = {"version": plugin_index.INDEX_VERSION, "ember": __version__,
                "group": group, "fingerprint": plugin_index._fingerprint(records),
                "entry_points": [r._asdict() for r in records]}
    seed = json.dumps(document).encode()

    def forge_index(rng: random.Random) -> bytes:
        if rng.random() < 0.8:
            return forge.mutate_json(rng, json.loads(seed))
        return forge.mutate_bytes(rng, seed)

    def check(data: bytes) -> str:
        index.write_bytes(data)
        os.chmod(index, 0o600)
        found = plugin_index._read_index(str(index), group)
        if found is None:
            raise EmberError("refused")
        for record in found:  # what a start does with a record, short of importing it
            _ = record.module
        return "accepted"

    return Target("plugin-index", forge_index, check)
