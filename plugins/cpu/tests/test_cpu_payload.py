"""A CPU payload whose ports are not its graph's is refused at import: real onnxruntime bytes,
exported by the plugin, with forged ports around them (shapes, names, types, duplicates)."""

import numpy as np
import pytest

import ember
from ember.errors import BlobFormatError
from ember.model.port import Port
from ember.plugin import write_frame
from ember.store import blob
from ember.testing import mlp
from ember_cpu import payload

HEADER_FIELDS = ("ember_version", "plugin", "plugin_version", "device", "device_architecture",
                 "flags")


@pytest.fixture(scope="module")
def exported():
    return ember.Core().compile_model(mlp().SerializeToString(), "CPU").export_model()


def with_ports(exported_blob, inputs=None, outputs=None):
    """The exported blob with its payload's ports replaced (the ORT bytes untouched)."""
    header, data = blob.unpack(exported_blob)
    saved = payload.loads(bytes(data))
    forged = payload.dumps(saved.inputs if inputs is None else inputs,
                           saved.outputs if outputs is None else outputs, saved.graph)
    return blob.pack({name: getattr(header, name) for name in HEADER_FIELDS}, forged)


def ports(exported_blob):
    saved = payload.loads(bytes(blob.unpack(exported_blob)[1]))
    return saved.inputs, saved.outputs


def test_the_unforged_round_trip_imports(exported):
    compiled = ember.Core().import_model(with_ports(exported), "CPU")
    x = np.ones((2, 16), np.float32)
    reference = ember.Core().compile_model(mlp().SerializeToString(), "CPU")
    assert compiled(x)[0].tobytes() == reference(x)[0].tobytes()


def forgeries(inputs, outputs):
    (x,), (y,) = inputs, outputs
    other_size = tuple(d + 1 if isinstance(d, int) else d for d in x.shape)
    return {
        "input size": ([Port(x.name, other_size, x.dtype)], None, "has shape"),
        "input rank": ([Port(x.name, (*x.shape, 1), x.dtype)], None, "has shape"),
        "output rank": (None, [Port(y.name, y.shape[:-1], y.dtype)], "has shape"),
        "input type": ([Port(x.name, x.shape, np.dtype(np.float64))], None, "inputs"),
        "input name": ([Port("not_x", x.shape, x.dtype)], None, "inputs"),
        "output name": (None, [Port("not_y", y.shape, y.dtype)], "outputs"),
        "duplicate input": ([x, Port(x.name, x.shape, x.dtype, 1)], None, "same name"),
        "duplicate output": (None, [y, Port(y.name, y.shape, y.dtype, 1)], "same name"),
        "missing input": ([], None, "inputs"),
    }


FORGERIES = ["input size", "input rank", "output rank", "input type", "input name",
             "output name", "duplicate input", "duplicate output", "missing input"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_payload_whose_ports_are_not_its_graphs_is_refused(exported, forgery):
    inputs, outputs, problem = forgeries(*ports(exported))[forgery]
    with pytest.raises(BlobFormatError, match=problem):
        ember.Core().import_model(with_ports(exported, inputs, outputs), "CPU")


def test_dynamic_dimensions_match_any_size_but_fixed_ones_must_agree(exported):
    (x,), _ = ports(exported)
    assert not isinstance(x.shape[0], int)  # the batch is dynamic in the graph
    named = Port(x.name, (16, x.shape[1]), x.dtype)  # a size where the graph has a name: fine
    ember.Core().import_model(with_ports(exported, [named]), "CPU")


# -- the payload's framing, read directly -------------------------------------------------------


def framed(ort, ports, flags=0, version=payload.FORMAT_VERSION, kind=payload.KIND):
    """A payload in the plugin framing, built by hand: the framing's own bounds are tested in
    core; these tests are about what the CPU plugin reads inside it."""
    return write_frame(kind, version, [ort, ports], flags=flags)


def test_a_payload_round_trips_without_a_copy(exported):
    data = bytes(blob.unpack(exported)[1])
    saved = payload.loads(data)
    assert saved.session_bytes is data  # the whole payload, handed to onnxruntime in place
    again = payload.dumps(saved.inputs, saved.outputs, saved.graph)
    assert again == data
    assert bytes(payload.loads(memoryview(data)).session_bytes) == bytes(saved.graph)


def test_an_encrypted_payload_needs_its_callbacks(exported):
    data = bytes(blob.unpack(exported)[1])
    saved = payload.loads(data)
    flip = bytes(range(256))[::-1]

    def encrypt(body):
        return bytes(body).translate(flip)

    secret = payload.dumps(saved.inputs, saved.outputs, saved.graph, encrypt)
    assert saved.graph.tobytes()[:64] not in secret
    opened = payload.loads(secret, encrypt)  # the translation is its own inverse
    assert opened.inputs == saved.inputs and bytes(opened.graph) == bytes(saved.graph)
    with pytest.raises(BlobFormatError, match="no callbacks"):
        payload.loads(secret)

    def refuse(body):
        raise ValueError("wrong key")

    with pytest.raises(BlobFormatError, match="does not decrypt: wrong key"):
        payload.loads(secret, refuse)

    def refuse_as_ember(body):
        raise BlobFormatError("tag mismatch")

    with pytest.raises(BlobFormatError, match=r"^tag mismatch$"):
        payload.loads(secret, refuse_as_ember)


PORTS = b'{"inputs": [], "outputs": []}'


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "too short"),
    (framed(b"x", PORTS, kind=b"EMGPU\0\0\0"), "wrong magic"),
    (framed(b"x", PORTS, version=payload.FORMAT_VERSION + 1), "format 4"),
    (framed(b"x", PORTS, flags=2), "unknown flags 0x2"),
    (write_frame(payload.KIND, payload.FORMAT_VERSION, [b"x"]), "1 sections, not 2"),
    (framed(b"x", b"[]"), "not an object"),
    (framed(b"x", b'{"inputs": {}, "outputs": []}'), "not a list"),
    (framed(b"x", b"[[[[[]]]]]"), "nested"),
    (framed(b"x", b""), "not valid JSON"),
])
def test_a_damaged_payload_is_refused(data, problem):
    with pytest.raises(BlobFormatError, match=problem):
        payload.loads(data)


def test_the_smallest_payload_is_read():
    saved = payload.loads(framed(b"ORT", PORTS))
    assert (saved.inputs, saved.outputs, bytes(saved.graph)) == ([], [], b"ORT")


def test_the_number_of_ports_is_bounded():
    ports = b'{"inputs": [' + b",".join([b"0"] * 65537) + b'], "outputs": []}'
    with pytest.raises(BlobFormatError, match="not a list"):
        payload.loads(framed(b"", ports))
    ports = b'{"inputs": [' + b",".join([b"0"] * 65536) + b'], "outputs": []}'
    with pytest.raises(BlobFormatError) as refused:  # as many as allowed: each port is read
        payload.loads(framed(b"", ports))
    assert "not a list" not in str(refused.value)


def test_the_size_of_the_ports_is_bounded_exactly():
    limit = 16 << 20  # the ports' JSON, padded to the bound with spaces, then one byte over
    document = b'{"inputs": 1, "outputs": []}'  # read (at the bound), then refused for its ports
    for size, problem in ((limit, "the ports are not a list"), (limit + 1, "larger than")):
        ports = document + b" " * (size - len(document))
        with pytest.raises(BlobFormatError, match=problem):
            payload.loads(framed(b"", ports))
