"""ember.runtime.inputs: a compiled model's precomputed input checks take the plain forms as
given and treat every other form, and every bad input, exactly as prepare_inputs does."""

import numpy as np
import pytest

from ember import Tensor
from ember.errors import InferenceInputError
from ember.model.port import Port
from ember.runtime.compiled_model import InferResult, OutputNames
from ember.runtime.inputs import InputChecks, prepare_inputs

PORTS = [Port("audio", (1, None), np.dtype(np.float32), 0),  # a dynamic dimension
         Port("rate", (), np.dtype(np.int64), 1),  # a scalar
         Port("state", (2, "batch", 128), np.dtype(np.float32), 2),  # two fixed, one not
         Port("gain", (1,), np.dtype(np.float32), 3)]  # every dimension fixed


def good() -> dict[str, np.ndarray]:
    return {"audio": np.zeros((1, 512), np.float32), "rate": np.array(16000, np.int64),
            "state": np.zeros((2, 1, 128), np.float32), "gain": np.ones(1, np.float32)}


@pytest.mark.parametrize("form", ["dict", "list", "tuple", "tensors"])
def test_plain_inputs_are_passed_as_given(form):
    feeds = good()
    given = {"dict": feeds, "list": list(feeds.values()), "tuple": tuple(feeds.values()),
             "tensors": {k: Tensor(v, shared_memory=True) for k, v in feeds.items()}}[form]
    arrays = InputChecks(PORTS).prepare(given)
    assert all(got is want for got, want in zip(arrays, feeds.values(), strict=True))


def test_one_array_for_a_one_input_model():
    x = np.zeros((2, 16), np.float32)
    checks = InputChecks([Port("x", ("batch", 16), np.dtype(np.float32))])
    assert checks.prepare(x)[0] is x
    assert checks.prepare([x])[0] is x


def feeds_in_every_form() -> list[object]:
    feeds = good()
    return [
        {0: feeds["audio"], 1: feeds["rate"], 2: feeds["state"], 3: feeds["gain"]},  # by index
        {PORTS[0]: feeds["audio"], "rate": feeds["rate"], 2: feeds["state"],  # mixed keys
         "gain": feeds["gain"]},
        {"audio": feeds["audio"].astype(np.float64), "rate": 16000,  # conversions
         "state": feeds["state"].tolist(), "gain": [1]},
        [feeds["audio"][:, ::2], feeds["rate"], feeds["state"], feeds["gain"]],  # a view
    ]


@pytest.mark.parametrize("index", range(4))
def test_other_forms_give_what_prepare_inputs_gives(index):
    given = feeds_in_every_form()[index]
    got = InputChecks(PORTS).prepare(given)
    want = prepare_inputs(PORTS, given)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


BAD = [
    ({"audio": good()["audio"]}, r"missing input\(s\) \['rate', 'state', 'gain'\]"),
    ({**good(), "extra": np.zeros(1)}, "no input 'extra'"),
    ({**{k: v for k, v in good().items() if k != "rate"}, "sample_rate": 1}, "no input"),
    ({**good(), "audio": np.zeros((2, 512), np.float32)}, r"'audio' expects shape \[1, \?\]"),
    ({**good(), "audio": np.zeros(512, np.float32)}, r"'audio' expects shape"),
    ({**good(), "state": np.zeros((2, 1, 64), np.float32)},
     r"'state' expects shape \[2, batch, 128\]"),
    ({**good(), "state": np.zeros((3, 1, 128), np.float32)}, r"'state' expects shape"),
    ({**good(), "state": np.zeros((2, 128), np.float32)}, r"'state' expects shape"),
    ({**good(), "gain": np.ones(2, np.float32)}, r"'gain' expects shape \[1\]"),
    ({**good(), "state": np.zeros((2, 1, 128), np.complex64)},
     "'state' expects float32, got complex"),
    ({**good(), "rate": np.array(16000.5)}, "'rate' expects int64, got float64"),
    ({**good(), "rate": np.array([16000])}, r"'rate' expects shape \[\]"),
    (list(good().values())[:2], "got 2 input"),
    ([*good().values(), np.zeros(1)], "got 5 input"),
    ({**good(), "audio": [[1.0, 2.0], [3.0]]}, "'audio' is not an array numpy can build"),
]


@pytest.mark.parametrize(("given", "message"), BAD)
def test_bad_inputs_raise_the_errors_of_prepare_inputs(given, message):
    with pytest.raises(InferenceInputError, match=message):
        InputChecks(PORTS).prepare(given)
    with pytest.raises(InferenceInputError, match=message):
        prepare_inputs(PORTS, given)


def test_results_share_the_compiled_models_output_names():
    ports = [Port("scores", (1, 2), np.dtype(np.float32), 0),
             Port("state", (2,), np.dtype(np.float32), 1)]
    outputs = OutputNames(ports)
    arrays = [np.ones((1, 2), np.float32), np.zeros(2, np.float32)]
    for result in (InferResult.of(outputs, list(arrays)), InferResult(ports, arrays)):
        assert result["state"] is arrays[1] and result[0] is arrays[0]
        assert result[-1] is arrays[1] and result[ports[0]] is arrays[0]
        assert list(result) == ["scores", "state"] and len(result) == 2
        assert list(result.to_dict()) == ["scores", "state"]
        assert result.to_tuple() == tuple(arrays)
        assert "scores: float32[1, 2]" in repr(result)
        with pytest.raises(KeyError, match="no output 'nope'; outputs are"):
            result["nope"]
        with pytest.raises(IndexError, match="output index 2 out of range"):
            result[2]
    with pytest.raises(ValueError, match="1 arrays for 2 outputs"):
        InferResult(ports, arrays[:1])


def test_a_port_is_an_immutable_value():
    """Port stopped being a dataclass (every warm start paid for defining it): it keeps a
    dataclass's promises."""
    import copy
    import pickle

    port = Port("state", (2, "batch", 128), np.dtype(np.float32), 2)
    same = Port("state", (2, "batch", 128), np.dtype(np.float32), 2)
    assert port == same and hash(port) == hash(same) and port != PORTS[0]
    assert {port: 1}[same] == 1
    assert pickle.loads(pickle.dumps(port)) == port == copy.deepcopy(port)
    with pytest.raises(AttributeError):
        port.name = "other"  # type: ignore[misc]
    assert repr(port) == ("Port(name='state', shape=(2, 'batch', 128), dtype=dtype('float32'), "
                          "index=2)")
    assert port.get_element_type() == "f32" and str(port.get_partial_shape()) == "[2,?,128]"
