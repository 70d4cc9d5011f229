"""The optimised graph a compile saves: in an anonymous memory file where the OS has one, in a
private temporary directory elsewhere; the same usable bytes either way, and nothing left behind."""

import os

import numpy as np
import onnxruntime as ort

import ember
from ember.testing import ppocr_cls_path
from ember_cpu import saved_graph


def compile_and_check(tmp_path, monkeypatch):
    """Compile the classifier (TMPDIR an empty directory); its saved graph, loaded as a cached
    entry is, gives the ONNX file's results; the temporary directory is left empty."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    image = np.random.default_rng(0).random((1, 3, 48, 192), dtype=np.float32)
    compiled = ember.Core().compile_model(ppocr_cls_path(), "CPU")
    graph = bytes(compiled.device_model.ort_bytes)
    assert graph[4:8] == b"ORTM"  # a flatbuffer with onnxruntime's file identifier
    options = ort.SessionOptions()
    options.add_session_config_entry("session.load_model_format", "ORT")
    from_graph = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    from_file = ort.InferenceSession(str(ppocr_cls_path()), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(from_graph.run(None, {"x": image})[0],
                               from_file.run(None, {"x": image})[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(compiled(image)[0], from_graph.run(None, {"x": image})[0])
    assert list(scratch.iterdir()) == []


def test_the_graph_is_saved_in_memory_where_the_os_has_memfd(tmp_path, monkeypatch):
    with saved_graph.graph_file() as (path, read):
        assert path.startswith("/proc/self/fd/")
        with open(path, "wb") as saved:  # as onnxruntime opens it: by name, for writing
            saved.write(b"graph")
        assert read() == b"graph"
    compile_and_check(tmp_path, monkeypatch)


def test_without_memfd_the_graph_goes_through_a_private_temporary_directory(tmp_path,
                                                                          monkeypatch):
    monkeypatch.delattr(os, "memfd_create", raising=False)  # as on macOS or Windows
    with saved_graph.graph_file() as (path, read):
        assert not path.startswith("/proc/")
        assert os.stat(os.path.dirname(path)).st_mode & 0o077 == 0
        with open(path, "wb") as saved:
            saved.write(b"graph")
        assert read() == b"graph"
    assert not os.path.exists(os.path.dirname(path))
    compile_and_check(tmp_path, monkeypatch)
