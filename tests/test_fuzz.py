"""The fuzzer over every format Ember reads back (ember_devtools.fuzz): a bounded, seeded run per
target, the corpus of inputs that once broke a parser, and property tests (hypothesis) of the
bounded JSON reader and the blob header. The long run: ``python -m ember_devtools.fuzz``."""

import contextlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.common import checksum, safe_json
from ember.contract.framing import read_frame, write_frame
from ember.errors import BlobFormatError
from ember.store import blob
from ember.testing import forge
from ember_devtools import fuzz

CORPUS = Path(__file__).parent / "fuzz_corpus"
#: Inputs per target in `make test` (about 15 s in all); the long run does 100,000 or more.
INPUTS = int(os.environ.get("EMBER_FUZZ_INPUTS", "250"))
TARGETS = ("template-payload", "cpu-payload", "container", "signed-entry", "kernel-entry",
           "bundle", "manifest", "store-json", "onnx-header",
           "plugin-index")


@pytest.fixture(scope="module")
def targets(tmp_path_factory, redis_server):
    found = fuzz.targets(tmp_path_factory.mktemp("fuzz"), redis_url=redis_server.url)
    assert sorted(t.name for t in found) == sorted(TARGETS)
    return {t.name: t for t in found}


@pytest.mark.parametrize("name", TARGETS)
def test_bounded_fuzz_run(targets, name, tmp_path):
    counts = fuzz.fuzz([targets[name]], INPUTS, seed=2026, corpus=tmp_path).by_target[name]
    findings = [p.read_text() for p in tmp_path.rglob("*.txt")]
    assert counts["escaped"] == counts["wrong"] == counts["slow"] == 0, (counts, findings)
    assert counts["refused"] > INPUTS // 4  # the forgeries reach the checks (not vacuous)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*/*.bin")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_of_inputs_that_once_broke_a_parser(targets, path):
    why = path.with_suffix(".txt").read_text().strip()
    assert fuzz.run_one(targets[path.parent.name], path.read_bytes(), None) in (
        "refused", "accepted"), why


def test_the_fuzzer_finds_an_escape_and_keeps_it(tmp_path):
    """The harness itself: an exception that is not Ember's is counted and its input saved."""
    def check(data):
        raise KeyError(data)

    target = fuzz.Target("broken", lambda rng: bytes([rng.randrange(256)]), check)
    counts = fuzz.fuzz([target], 3, seed=0, corpus=tmp_path).by_target["broken"]
    assert counts["escaped"] == 3 and list((tmp_path / "broken").glob("*.bin"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_bounded_json_reader_is_total_over_bytes(data):
    with contextlib.suppress(BlobFormatError):
        safe_json.check_bounds(safe_json.loads(data, what="x", max_size=200, max_depth=8,
                                               max_nodes=50), what="x", max_depth=8,
                               max_nodes=50)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from([*sorted(blob.BlobHeader._fields), "extra"]),
       value=json_values)
def test_any_value_in_any_header_field_gives_a_header_or_a_blob_format_error(field, value):
    fields = {"ember_version": "1", "plugin": "p", "plugin_version": "1", "device": "D",
              "device_architecture": "a", "key": "k", "key_parts": {"model": "m"},
              "flags": [], "model_name": "m", "created": 1.0, "compile_seconds": 1.0,
              "payload_length": 7, "payload_checksum": checksum.hexdigest(b"payload")}
    data = forge.reframe(json.dumps({**fields, field: value}).encode(), b"payload")
    try:
        header, _ = blob.read_header(data)
    except BlobFormatError:
        return
    assert isinstance(header.device, str) and isinstance(header.key_parts, dict)
    if not field.startswith("payload_"):
        assert blob.unpack(data)[1].tobytes() == b"payload"


FRAME_KIND = b"EMTEST\0\0"


@settings(max_examples=300, deadline=None)
@given(sections=st.lists(st.binary(max_size=40), min_size=1, max_size=4),
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
       cut=st.integers(min_value=0, max_value=400))
def test_the_plugin_framing_is_total_and_its_sections_stay_in_bounds(sections, flips, cut):
    """Any frame, damaged anywhere or cut short, reads back as sections inside it that do not
    overlap, or is one BlobFormatError (ember.contract.framing, which every first-party payload
    uses)."""
    data = bytearray(write_frame(FRAME_KIND, 1, sections, flags=1, alignment=16))
    frame = read_frame(bytes(data), FRAME_KIND, 1, sections=len(sections), known_flags=1)
    assert [bytes(s) for s in frame.sections] == sections
    for position, value in flips:
        data[position % len(data)] = value
    forged = bytes(data[:len(data) - cut % (len(data) + 1)])
    try:
        frame = read_frame(forged, FRAME_KIND, 1, sections=len(sections), known_flags=1,
                           max_sizes=[40] * len(sections))
    except BlobFormatError:
        return
    end = 0
    for offset, section in zip(frame.offsets, frame.sections, strict=True):
        assert offset >= end and offset + section.nbytes <= len(forged) - 28
        end = offset + section.nbytes
