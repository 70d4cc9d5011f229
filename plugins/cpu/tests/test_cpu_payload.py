"""A CPU payload whose ports are not its graph's is refused at import: real onnxruntime bytes,
exported by the plugin, with forged ports around them (shapes, names, types, duplicates)."""

import numpy as np
import pytest

import ember
from ember import blob
from ember.errors import BlobFormatError
from ember.model import Port
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
