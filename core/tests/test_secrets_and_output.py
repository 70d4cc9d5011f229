"""Secrets are never printed, an empty signing key is an error, names are printed safely and
stdout belongs to the application."""

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import ember
from ember.cache.remote import RemoteSettings, RemoteTier, redact
from ember.errors import CacheWarning, PropertyValueError
from ember.testing import forge, ppocr_cls_path

PASSWORD = "hunter2-redis-password"
SECRET = "the-signing-secret-42"


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens on it once closed


def test_the_redis_password_and_the_key_are_in_no_repr_warning_or_log(tmp_path, caplog):
    url = f"redis://ember:{PASSWORD}@127.0.0.1:{closed_port()}/0?timeout=0.2"
    settings = RemoteSettings.parse(url, SECRET)
    assert PASSWORD not in repr(settings) and SECRET not in repr(settings)
    assert "signing_key=<set>" in repr(settings) and "ember:***@127.0.0.1" in repr(settings)
    assert PASSWORD not in repr(RemoteTier(settings).settings)
    with caplog.at_level(logging.DEBUG, logger="ember"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ember.Core().compile_model(ppocr_cls_path(), "TEMPLATE", {
            "CACHE_DIR": str(tmp_path / "cache"), "CACHE_REMOTE": url,
            "CACHE_SIGNING_KEY": SECRET})
    shown = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert any("remote cache redis://ember:***@127.0.0.1" in m for m in shown), shown
    assert not [m for m in shown if PASSWORD in m or SECRET in m]


def test_redact_keeps_everything_but_the_password():
    assert redact("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact("rediss://:p@h/0") == "rediss://:***@h/0"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
    assert redact("unix://u:p@/run/redis.sock") == "unix://u:***@/run/redis.sock"


def test_an_empty_signing_key_is_an_error_naming_the_setting(tmp_path, monkeypatch):
    config = {"CACHE_DIR": str(tmp_path / "cache")}
    with pytest.raises(PropertyValueError, match="CACHE_SIGNING_KEY is empty"):
        ember.Core().compile_model(ppocr_cls_path(), "TEMPLATE",
                                   {**config, "CACHE_SIGNING_KEY": ""})
    with pytest.raises(PropertyValueError, match="CACHE_SIGNING_KEY is empty"):
        ember.Core().set_property({"CACHE_SIGNING_KEY": b""})
    monkeypatch.setenv("EMBER_CACHE_SIGNING_KEY", "")
    with pytest.raises(PropertyValueError, match="EMBER_CACHE_SIGNING_KEY is set but empty"):
        ember.Core().compile_model(ppocr_cls_path(), "TEMPLATE", config)
    cli = subprocess.run([sys.executable, "-m", "ember.cli.main", "cache", "verify",
                          "--cache-dir", str(tmp_path / "cache")], capture_output=True,
                         text=True, env={**os.environ, "EMBER_CACHE_SIGNING_KEY": ""},
                         check=False)
    assert cli.returncode != 0 and "EMBER_CACHE_SIGNING_KEY is set but empty" in cli.stderr


def test_cache_ls_prints_names_that_are_not_text_on_a_strict_utf8_terminal(tmp_path):
    cache_dir = tmp_path / "cache"
    strange = os.fsencode(tmp_path) + b"/model-\xff\x1b[2J.onnx"  # not UTF-8, and an escape
    shutil.copyfile(ppocr_cls_path(), strange)
    ember.Core().compile_model(strange.decode(errors="surrogateescape"), "TEMPLATE",
                               {"CACHE_DIR": str(cache_dir)})
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "COLUMNS": "200"}
    for extra in ([], ["--json"]):
        listing = subprocess.run([sys.executable, "-m", "ember.cli.main", "cache", "ls",
                                  "--cache-dir", str(cache_dir), *extra],
                                 capture_output=True, env=environment, check=False)
        assert listing.returncode == 0, listing.stderr.decode(errors="replace")
        listing.stdout.decode("utf-8")  # strict: every byte printed is UTF-8
        assert b"\x1b" not in listing.stdout
    assert b"model-\\udcff\\x1b[2J.onnx" in subprocess.run(
        [sys.executable, "-m", "ember.cli.main", "cache", "ls", "--cache-dir", str(cache_dir)],
        capture_output=True, env=environment, check=True).stdout


DAMAGED_CPU_ENTRY = """
import json, sys, warnings
import ember
warnings.simplefilter("ignore")
ember.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2]})
"""


def test_a_damaged_cpu_entry_prints_nothing_on_stdout(tmp_path):
    cache_dir = tmp_path / "cache"
    ember.Core().compile_model(ppocr_cls_path(), "CPU", {"CACHE_DIR": str(cache_dir)})
    (entry,) = (cache_dir / "blobs").glob("*.blob")
    fields, payload = forge.split(entry.read_bytes())
    damaged = bytearray(payload)
    # A name inside the ORT bytes that is no longer UTF-8 (the CPU framing intact, checksums
    # redone): onnxruntime fails with a UnicodeDecodeError, the kind it "falls back" from.
    name = damaged.index(b"reorder_token_10")
    damaged[name + 4] = 0x85
    entry.write_bytes(forge.reframe(fields, bytes(damaged)))
    run = subprocess.run([sys.executable, "-c", DAMAGED_CPU_ENTRY, str(ppocr_cls_path()),
                          str(cache_dir)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert "EP Error" not in run.stderr  # nor a banner elsewhere: the cache's warning says it


def test_the_cache_warning_names_what_onnxruntime_said(tmp_path):
    cache_dir = tmp_path / "cache"
    ember.Core().compile_model(ppocr_cls_path(), "CPU", {"CACHE_DIR": str(cache_dir)})
    (entry,) = (cache_dir / "blobs").glob("*.blob")
    fields, _payload = forge.split(entry.read_bytes())
    entry.write_bytes(forge.reframe(fields, b"not an ORT model"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ember.Core().compile_model(ppocr_cls_path(), "CPU", {"CACHE_DIR": str(cache_dir)})
    messages = [str(w.message) for w in caught if w.category is CacheWarning]
    assert any("could not be imported" in m for m in messages), messages
    json.dumps(messages)
