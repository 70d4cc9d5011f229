"""The oneDNN-style persistent cache API: blob ids, blobs, the primitive cache, verbose lines."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember.errors import NotSupportedError
from ember_gpu import build_info, opencl, primitive_cache
from ember_gpu import persistent_cache as pc

SOURCE = """
__kernel void scale(__global float *x) {{ x[get_global_id(0)] *= {factor}.0f; }}
"""


def source(factor, tag):
    """A small program; the tag keeps tests from sharing primitive cache entries."""
    return f"// {tag}\n" + SOURCE.format(factor=factor)


def run(kernel, values):
    cl = opencl.pyopencl()
    runtime = opencl.runtime(kernel.descriptor.device)
    data = np.array(values, dtype=np.float32)
    buffer = cl.Buffer(runtime.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                       hostbuf=data)
    entry = kernel.kernel("scale")
    entry.set_args(buffer)
    cl.enqueue_nd_range_kernel(runtime.queue, entry, (len(values),), None)
    cl.enqueue_copy(runtime.queue, data, buffer)
    return data.tolist()


@pytest.fixture
def verbose_lines(caplog):
    caplog.set_level(logging.DEBUG, logger="ember_gpu.verbose")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "ember_gpu.verbose"]


@pytest.fixture
def capacity():
    before = pc.get_primitive_cache_capacity()
    yield pc.set_primitive_cache_capacity
    pc.set_primitive_cache_capacity(before)


def test_blob_round_trip(gpu_device, verbose_lines, capacity):
    descriptor = pc.kernel_descriptor(gpu_device, source(2, "round trip"))
    kernel = pc.create_kernel(descriptor)
    assert run(kernel, [1, 2]) == [2, 4]  # launched once: the blob is then complete on PoCL
    blob = kernel.cache_blob()
    capacity(0)  # nothing in memory: the blob must be used
    again = pc.create_kernel(pc.kernel_descriptor(gpu_device, source(2, "round trip")), blob)
    assert again is not kernel and run(again, [3]) == [6]
    hows = [line.split(",")[2] for line in verbose_lines()]
    assert hows == ["create:cache_miss", "create:from_cache_blob"]


def test_identical_kernel_in_memory_is_returned_and_the_blob_not_used(gpu_device,
                                                                      verbose_lines):
    first = pc.create_kernel(pc.kernel_descriptor(gpu_device, source(3, "primitive cache")))
    second = pc.create_kernel(pc.kernel_descriptor(gpu_device, source(3, "primitive cache")),
                              b"not even a blob")
    assert second is first
    assert [line.split(",")[2] for line in verbose_lines()] == [
        "create:cache_miss", "create:cache_hit"]


def test_primitive_cache_capacity_and_lru(gpu_device, capacity, verbose_lines):
    capacity(1)
    a = pc.kernel_descriptor(gpu_device, source(4, "lru a"))
    b = pc.kernel_descriptor(gpu_device, source(4, "lru b"))
    pc.create_kernel(a)
    pc.create_kernel(b)  # a is evicted
    pc.create_kernel(b)
    pc.create_kernel(a)
    assert [line.split(",")[2] for line in verbose_lines()] == [
        "create:cache_miss", "create:cache_miss", "create:cache_hit", "create:cache_miss"]
    assert primitive_cache.size() == 1
    with pytest.raises(ValueError):
        capacity(-1)


def test_capacity_from_the_environment():
    code = ("from ember_gpu.persistent_cache import get_primitive_cache_capacity as get;"
            " print(get())")
    for value, expected in [("3", "3"), ("0", "0"), (None, "1024")]:
        env = {} if value is None else {"EMBER_PRIMITIVE_CACHE_CAPACITY": value}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PATH": "/usr/bin:/bin", **env})
        assert out.stdout.strip() == expected


def test_cache_blob_id_identifies_source_options_device_and_build(gpu_device):
    descriptor = pc.kernel_descriptor(gpu_device, source(5, "id"))
    blob_id = descriptor.cache_blob_id()
    assert isinstance(blob_id, bytes)
    assert pc.kernel_descriptor(gpu_device, source(5, "id")).cache_blob_id() == blob_id
    assert pc.kernel_descriptor(gpu_device, source(6, "id")).cache_blob_id() != blob_id
    assert pc.kernel_descriptor(gpu_device, source(5, "id"),
                                ["-cl-mad-enable"]).cache_blob_id() != blob_id
    fields = json.loads(blob_id)
    device = opencl.devices()[0]
    assert fields["device"] == device.identity()
    assert device.driver_version == fields["device"]["driver"]
    # the commit; the versions of Ember and the plugin are the core's key's (not repeated here)
    assert fields["ember_git"] == (build_info.ember_git_commit() or build_info.UNKNOWN)
    assert "ember" not in fields and "ember_gpu" not in fields


def test_git_commit_is_read_from_the_checkout():
    # The tests run from the repository's checkout (an editable install): git knows its HEAD.
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=build_info.__file__.rsplit("/", 1)[0], check=True)
    assert build_info.ember_git_commit() == head.stdout.strip()


def test_git_head_is_read_from_refs_packed_refs_detached_heads_and_worktrees(tmp_path):
    def git(*args, cwd=tmp_path / "repo"):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    (tmp_path / "repo").mkdir()
    git("init", "-q", "-b", "main")
    git("commit", "-q", "--allow-empty", "-m", "one")
    first = git("rev-parse", "HEAD")
    git_dir = tmp_path / "repo" / ".git"
    assert build_info._head(git_dir) == first  # a loose ref
    git("pack-refs", "--all", "--prune")
    assert not (git_dir / "refs" / "heads" / "main").exists()
    assert build_info._head(git_dir) == first  # from packed-refs
    git("commit", "-q", "--allow-empty", "-m", "two")
    second = git("rev-parse", "HEAD")
    git("worktree", "add", "-q", "--detach", str(tmp_path / "tree"), first)
    tree_git_dir = tmp_path / "repo" / (tmp_path / "tree" / ".git").read_text().split(
        "gitdir:")[1].strip()
    assert build_info._head(tree_git_dir) == first  # a detached worktree
    git("checkout", "-q", "-b", "side", cwd=tmp_path / "tree")
    git("commit", "-q", "--allow-empty", "-m", "three", cwd=tmp_path / "tree")
    third = git("rev-parse", "HEAD", cwd=tmp_path / "tree")
    assert build_info._head(tree_git_dir) == third  # a branch, its ref in the main repository
    assert build_info._head(git_dir) == second
    (git_dir / "HEAD").write_text("garbage\n")
    assert build_info._head(git_dir) is None


def test_blobs_of_other_kernels_or_formats_are_rejected(gpu_device, capacity):
    capacity(0)
    descriptor = pc.kernel_descriptor(gpu_device, source(7, "reject"))
    with pytest.raises(pc.BlobRejectedError, match="not an ember-gpu kernel blob"):
        pc.create_kernel(descriptor, b"\x7fELF...")
    with pytest.raises(pc.BlobRejectedError, match="driver refused"):
        pc.create_kernel(descriptor, b"EMBERCL\x01garbage")
    other = pc.create_kernel(pc.kernel_descriptor(gpu_device, source(7, "reject other")))
    wanting = pc.KernelDescriptor(descriptor.device, descriptor.source,
                                  kernel_names=["scale", "shift"])
    with pytest.raises(pc.BlobRejectedError, match="lacks the kernels"):
        pc.create_kernel(wanting, other.cache_blob())


@pytest.mark.parametrize("device_name", ["CPU", "TEMPLATE", "NPU.1"])
def test_devices_without_opencl_have_no_such_api(device_name):
    with pytest.raises(NotSupportedError, match="OpenCL devices only") as info:
        pc.kernel_descriptor(device_name, source(1, "cpu"))
    assert device_name in str(info.value)


def test_absent_gpu_index_is_an_unknown_device():
    with pytest.raises(ember.errors.UnknownDeviceError):
        pc.kernel_descriptor(f"GPU.{len(opencl.devices())}", source(1, "absent"))


def test_verbose_mode_prints_one_line_per_creation(gpu_device, capsys, monkeypatch):
    monkeypatch.setenv("EMBER_VERBOSE", "2")
    descriptor = pc.kernel_descriptor(gpu_device, source(8, "verbose"))
    pc.create_kernel(descriptor)
    pc.create_kernel(descriptor)
    monkeypatch.setenv("EMBER_VERBOSE", "1")
    pc.create_kernel(descriptor)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, how in zip(lines, ["cache_miss", "cache_hit"], strict=True):
        prefix, kind, create, device, _name, kernels, blob_id, ms = line.split(",")
        assert (prefix, kind, create, device) == ("ember_verbose", "gpu", f"create:{how}",
                                                  gpu_device)
        assert kernels == "kernels=1" and blob_id == f"id={descriptor.short_id}"
        assert float(ms) >= 0
