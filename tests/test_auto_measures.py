"""AUTO measures its candidates on a model's first compile and remembers the fastest.

Real devices: CPU (onnxruntime) and TEMPLATE (numpy), on PaddleOCR's text-direction classifier,
where onnxruntime is many times faster than the reference executor whatever the machine's load,
so the choice is certain. TEMPLATE is listed first: the measurement, not the order, picks CPU.
"""

import logging

import numpy as np
import pytest

import ember
from ember.errors import BlobFormatError, PropertyValueError
from ember.runtime.auto_memory import ChoiceMemory, parse_choice
from ember.testing import mlp, ppocr_cls_path

CANDIDATES = "AUTO:TEMPLATE,CPU"
IMAGE = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)


def measured_records(caplog):
    return [r for r in caplog.records if r.name == "ember.auto" and "measured" in r.message]


def test_auto_measures_picks_the_faster_device_and_remembers_it(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ember.auto")
    config = {"CACHE_DIR": str(tmp_path)}
    expected = ember.Core().compile_model(ppocr_cls_path(), "CPU")(IMAGE)[0]
    compiled = ember.Core().compile_model(ppocr_cls_path(), CANDIDATES, config)
    assert compiled.get_property("EMBER_AUTO_CHOICE").startswith("measuring:")
    np.testing.assert_allclose(compiled(IMAGE)[0], expected, rtol=1e-4, atol=1e-5)  # CPU serves
    assert compiled.wait_for_target(120)
    assert compiled.get_property("EXECUTION_DEVICES") == ["CPU"]
    choice = compiled.get_property("EMBER_AUTO_CHOICE")
    assert choice.startswith("measured: CPU was the fastest") and "TEMPLATE" in choice
    assert len(measured_records(caplog)) == 1
    np.testing.assert_allclose(compiled(IMAGE)[0], expected, rtol=1e-4, atol=1e-5)

    caplog.clear()
    warm = ember.Core().compile_model(ppocr_cls_path(), CANDIDATES, config)
    assert warm.get_property("EXECUTION_DEVICES") == ["CPU"]  # at once: nothing to wait for
    assert warm.get_property("EMBER_AUTO_CHOICE").startswith(
        "remembered in CACHE_DIR: CPU was the fastest")
    assert warm.get_property("LOADED_FROM_CACHE")
    assert measured_records(caplog) == []  # no measuring happened
    assert any("remembered" in r.message for r in caplog.records)
    np.testing.assert_allclose(warm(IMAGE)[0], expected, rtol=1e-4, atol=1e-5)

    # other candidates are another choice: measured again
    other = ember.Core().compile_model(ppocr_cls_path(), "AUTO:CPU,TEMPLATE", config)
    assert other.wait_for_target(120)
    assert other.get_property("EMBER_AUTO_CHOICE").startswith("measured: CPU")


def test_a_forged_choice_record_is_refused_and_measured_again(tmp_path, caplog):
    core = ember.Core()
    config = {"CACHE_DIR": str(tmp_path), "ENABLE_STARTUP_FALLBACK": False}
    memory = ChoiceMemory(core, str(ppocr_cls_path()), ["TEMPLATE", "CPU"],
                          {"CACHE_DIR": str(tmp_path)})
    forged = b'{"device": "TEMPLATE", "seconds": {"TEMPLATE": -1}}'
    assert memory._store.put(memory._key, forged)  # a valid entry holding a forged record
    caplog.set_level(logging.INFO, logger="ember.auto")
    compiled = core.compile_model(ppocr_cls_path(), CANDIDATES, config)
    assert "refused the choice" in caplog.text
    # measured in compile_model (no fallback serving): CPU, not the forged TEMPLATE
    assert compiled.get_property("EXECUTION_DEVICES") == ["CPU"]
    assert compiled.get_property("EMBER_AUTO_CHOICE").startswith("measured: CPU")
    assert memory.recall().device == "CPU"  # the record was written again


@pytest.mark.parametrize("payload", [
    b"", b"\xff\xfe", b"[]", b"null", b'{"device": "CPU"}',
    b'{"device": "NPU", "seconds": {"NPU": 0.001}}',           # not a candidate
    b'{"device": "CPU", "seconds": {"TEMPLATE": 0.001}}',      # no time for the winner
    b'{"device": "CPU", "seconds": {"CPU": 1e999}}',
    b'{"device": "CPU", "seconds": {"CPU": true}}',
    b'{"device": "CPU", "seconds": {"CPU": 0.001}, "left_out": {"CPU": 7}}',
    b'{"device": "CPU", "seconds": {"CPU": 0.001}, "left_out": ' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"device": "CPU", "seconds": {"CPU": 0.001}, "x": "' + b"a" * 10000 + b'"}',
])
def test_choice_records_are_parsed_totally(payload):
    with pytest.raises(BlobFormatError):
        parse_choice(payload, ["TEMPLATE", "CPU"])


def test_a_valid_record_parses():
    choice = parse_choice(b'{"device": "CPU", "seconds": {"CPU": 0.001, "TEMPLATE": 0.02}, '
                          b'"left_out": {}}', ["TEMPLATE", "CPU"])
    assert choice.device == "CPU" and choice.seconds["TEMPLATE"] == 0.02


def test_without_cache_dir_auto_measures_once_per_process():
    model = mlp(seed=21).SerializeToString()  # a model no other test compiles on AUTO
    first = ember.Core().compile_model(model, CANDIDATES, {"ENABLE_STARTUP_FALLBACK": False})
    assert first.get_property("EMBER_AUTO_CHOICE").startswith("measured:")
    again = ember.Core().compile_model(model, CANDIDATES, {"ENABLE_STARTUP_FALLBACK": False})
    assert again.get_property("EMBER_AUTO_CHOICE").startswith("remembered in this process")
    assert again.get_property("EXECUTION_DEVICES") == first.get_property("EXECUTION_DEVICES")


def test_priority_selection_and_a_wrong_selection():
    model = mlp(seed=22).SerializeToString()
    by_priority = ember.Core().compile_model(model, CANDIDATES,
                                             {"EMBER_AUTO_SELECTION": "PRIORITY",
                                              "ENABLE_STARTUP_FALLBACK": False})
    assert by_priority.get_property("EXECUTION_DEVICES") == ["TEMPLATE"]
    assert by_priority.get_property("EMBER_AUTO_CHOICE").startswith("priority:")
    with pytest.raises(PropertyValueError, match="EMBER_AUTO_SELECTION"):
        ember.Core().compile_model(model, CANDIDATES, {"EMBER_AUTO_SELECTION": "GUESS"})


EXITS_AT_ONCE = """
import atexit, sys, time
import ember
from ember.testing import ppocr_cls_path

compiled = ember.Core().compile_model(ppocr_cls_path(), "AUTO", {"CACHE_DIR": sys.argv[1]})
print(compiled.get_property("EMBER_AUTO_CHOICE"))
# atexit's hooks run after Python has waited for the non-daemon threads: the work has ended
atexit.register(lambda: print(compiled.get_property("EMBER_AUTO_CHOICE")))
print(time.time(), flush=True)
"""


def test_a_process_that_is_done_stops_measuring_and_the_next_start_measures_again(tmp_path):
    # Every device installed is a candidate (GPU.0 on PoCL, TEMPLATE, OPENVINO in CI): compiling
    # them takes far longer than this script, which ends as soon as compile_model returns.
    import os
    import subprocess
    import sys
    import time

    from ember.testing.subprocesses import pythonpath

    env = {**os.environ, "PYTHONPATH": pythonpath()}

    def run() -> tuple[list[str], str, float]:
        done = subprocess.run([sys.executable, "-c", EXITS_AT_ONCE, str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=300, check=True)
        exited = time.time()
        first, ended_at, last = done.stdout.splitlines()
        return [first, last], done.stderr, exited - float(ended_at)

    (started, ended), stderr, tail = run()
    assert started.startswith("measuring: CPU serves while")
    assert ended.startswith("not measured: the process ended while measuring"), ended
    assert stderr == ""  # no warning: the cut is not a candidate failing
    assert tail < 20  # waits for the one compile running at most (it was every candidate's)
    (started, ended), stderr, _ = run()
    assert started.startswith("measuring:"), started  # nothing was remembered: measured again
    assert ended.startswith("not measured:") and stderr == ""


def test_a_choice_timed_on_made_up_input_sizes_is_not_remembered(tmp_path):
    """A model whose input sizes are dynamic: inputs made up (a guessed size) can rank the
    devices unlike the application's own (a small image favoured CPU, a large one OPENVINO),
    so only a choice timed on the application's inputs is remembered."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "dynamic_sizes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, "h", "w"])])
    path = tmp_path / "dynamic_sizes.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    config = {"CACHE_DIR": str(tmp_path / "cache")}
    candidates = "AUTO:CPU,TEMPLATE"

    unseen = ember.Core().compile_model(path, candidates, config)
    assert unseen.wait_for_target(60)  # the application runs nothing before the choice
    assert "not remembered: timed on made-up input sizes" in \
        unseen.get_property("EMBER_AUTO_CHOICE")

    image = np.random.default_rng(0).random((1, 3, 20, 30), dtype=np.float32)
    seen = ember.Core().compile_model(path, candidates, config)
    assert seen.get_property("EMBER_AUTO_CHOICE").startswith("measuring:")  # measured again
    np.testing.assert_array_equal(seen(image)[0], np.maximum(image, 0))
    assert seen.wait_for_target(60)
    assert seen.get_property("EMBER_AUTO_CHOICE").startswith("measured:")
    assert "not remembered" not in seen.get_property("EMBER_AUTO_CHOICE")

    warm = ember.Core().compile_model(path, candidates, config)
    assert warm.get_property("EMBER_AUTO_CHOICE").startswith("remembered in CACHE_DIR")
