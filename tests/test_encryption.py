"""CACHE_ENCRYPTION_CALLBACKS: topology hidden in the cached blob on every device that claims
ENCRYPTION, other keys are a miss (never a crash), devices without it ignore the callbacks."""

import logging
import shutil
import warnings

import numpy as np
import onnx
import pytest

import ember
from ember.cache.cached_compile import ADMIT_ALL_ENV
from ember.crypto import EncryptionCallbacks, aes_gcm_callbacks
from ember.errors import CacheWarning, PropertyValueError
from ember.store import blob
from ember.testing import ppocr_cls_path
from ember.testing.toy import ToyPlugin, identity_model_bytes

ENCRYPTING_DEVICES = ["CPU", "TEMPLATE"]


def xor_callbacks(byte: int):
    """OpenVINO's example callbacks: a list of two functions, no authentication."""
    def codec(data):
        # numpy, not a Python loop over the bytes: an export slower than the compile would not
        # be cached (the cache's admission rule), and the tests below expect it to be
        return (np.frombuffer(data, np.uint8) ^ np.uint8(byte)).tobytes()
    return [codec, codec]



@pytest.fixture(autouse=True)
def admit_every_compile(monkeypatch):
    """The entries these tests read must be stored whatever a compile took."""
    monkeypatch.setenv(ADMIT_ALL_ENV, "1")

@pytest.fixture(scope="module")
def telltales():
    """Node names and operator types of the model that must not appear in an encrypted blob;
    only long ones, which random weight bytes cannot contain by chance."""
    model = onnx.load(str(ppocr_cls_path()))
    names = {n.name for n in model.graph.node if n.op_type != "Constant"}
    ops = {n.op_type for n in model.graph.node}
    return sorted(t for t in names | ops if len(t) >= 8)


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "classifier.onnx"
    shutil.copyfile(ppocr_cls_path(), path)
    return path


def cached_blob(cache_dir):
    (path,) = (cache_dir / "blobs").glob("*.blob")
    return path


def compile_cached(device, model_path, cache_dir, callbacks=None):
    config = {"CACHE_DIR": str(cache_dir)}
    if callbacks is not None:
        config["CACHE_ENCRYPTION_CALLBACKS"] = callbacks
    return ember.Core().compile_model(model_path, device, config)


@pytest.mark.parametrize("device", ENCRYPTING_DEVICES)
def test_devices_declare_encryption(device):
    assert "ENCRYPTION" in ember.Core().get_property(device, "OPTIMIZATION_CAPABILITIES")


@pytest.mark.parametrize("device", ENCRYPTING_DEVICES)
def test_topology_is_hidden_and_round_trips(device, model_path, tmp_path, telltales):
    image = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
    plain = compile_cached(device, model_path, tmp_path / "plain")
    plain_blob = cached_blob(tmp_path / "plain").read_bytes()
    assert any(t.encode() in plain_blob for t in telltales)  # the search can find them
    callbacks = aes_gcm_callbacks(b"0123456789abcdef")
    compile_cached(device, model_path, tmp_path / "secret", callbacks)
    secret_blob = cached_blob(tmp_path / "secret").read_bytes()
    assert [t for t in telltales if t.encode() in secret_blob] == []
    warm = compile_cached(device, model_path, tmp_path / "secret", callbacks)
    assert warm.get_property("LOADED_FROM_CACHE") is True
    assert warm(image)[0].tobytes() == plain(image)[0].tobytes()


@pytest.mark.parametrize("device", ENCRYPTING_DEVICES)
@pytest.mark.parametrize("other", ["other-aes-key", "xor", "none"])
def test_other_callbacks_are_a_miss_recompile_and_overwrite(device, model_path, tmp_path, other):
    cache_dir = tmp_path / "c"
    first = aes_gcm_callbacks(b"k" * 32)
    compile_cached(device, model_path, cache_dir, first)
    second = {"other-aes-key": aes_gcm_callbacks(b"j" * 32), "xor": xor_callbacks(0x5A),
              "none": None}[other]
    if second is None:
        # no callbacks: a different key (not encrypted), so simply a miss with no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled = compile_cached(device, model_path, cache_dir)
        assert compiled.get_property("LOADED_FROM_CACHE") is False
        assert len(list((cache_dir / "blobs").glob("*.blob"))) == 2  # both entries kept
        return
    with pytest.warns(CacheWarning, match="could not be imported"):
        compiled = compile_cached(device, model_path, cache_dir, second)
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    again = compile_cached(device, model_path, cache_dir, second)  # overwritten with the new key
    assert again.get_property("LOADED_FROM_CACHE") is True


@pytest.mark.parametrize("device", ENCRYPTING_DEVICES)
def test_an_encrypted_compile_never_hits_a_plain_entry(device, model_path, tmp_path):
    # "encrypted" is part of the key: asking for encryption must not be answered with an entry
    # that was stored in the clear (nor the other way round, above)
    cache_dir = tmp_path / "c"
    compile_cached(device, model_path, cache_dir)
    (plain,) = (cache_dir / "blobs").glob("*.blob")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        secret = compile_cached(device, model_path, cache_dir, aes_gcm_callbacks(b"k" * 32))
    assert secret.get_property("LOADED_FROM_CACHE") is False
    (encrypted,) = set((cache_dir / "blobs").glob("*.blob")) - {plain}
    assert blob.unpack(encrypted.read_bytes())[0].flags == ("encrypted",)
    assert blob.unpack(plain.read_bytes())[0].flags == ()


@pytest.mark.parametrize("form", ["tuple", "list", "object", "named"])
def test_callbacks_forms(model_path, tmp_path, form):
    encrypt, decrypt = xor_callbacks(0x33)

    class Holder:
        def __init__(self):
            self.encrypt, self.decrypt = encrypt, decrypt

    callbacks = {"tuple": (encrypt, decrypt), "list": [encrypt, decrypt], "object": Holder(),
                 "named": EncryptionCallbacks(encrypt, decrypt)}[form]
    compile_cached("TEMPLATE", model_path, tmp_path / "c", callbacks)
    warm = compile_cached("TEMPLATE", model_path, tmp_path / "c", callbacks)
    assert warm.get_property("LOADED_FROM_CACHE") is True


def test_bad_callbacks_are_refused(model_path):
    with pytest.raises(PropertyValueError, match="encrypt, decrypt"):
        ember.Core().compile_model(model_path, "TEMPLATE", {"CACHE_ENCRYPTION_CALLBACKS": "xor"})
    with pytest.raises(PropertyValueError, match="16, 24 or 32"):
        aes_gcm_callbacks(b"short")


def test_device_without_encryption_ignores_callbacks(caplog):
    core = ember.Core(load_installed_plugins=False)
    plugin = ToyPlugin("PLAIN", 1)
    core.register_plugin(plugin, "plain")
    with caplog.at_level(logging.DEBUG, logger="ember"):
        core.compile_model(identity_model_bytes(), "PLAIN",
                           {"CACHE_ENCRYPTION_CALLBACKS": xor_callbacks(1)})
    assert "CACHE_ENCRYPTION_CALLBACKS" not in plugin.compiled_configs[-1]
    assert "does not support CACHE_ENCRYPTION_CALLBACKS" in caplog.text


def test_aes_gcm_detects_tampering():
    callbacks = aes_gcm_callbacks(bytes(range(32)))
    sealed = bytearray(callbacks.encrypt(b"topology"))
    assert callbacks.decrypt(bytes(sealed)) == b"topology"
    sealed[-1] ^= 1
    with pytest.raises(ember.errors.BlobFormatError):
        callbacks.decrypt(bytes(sealed))
