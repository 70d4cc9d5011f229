"""Programs through the core's kernel cache: ``.cl_cache`` entries in the model-cache directory.

The order, for one program:

1. the in-memory primitive cache (an identical program already built in this process);
2. with ``CACHE_DIR``, the entry's binary. A binary the driver refuses (another driver build,
   a foreign or damaged payload the checksum let through) is reported to the core with
   ``reject`` and rebuilt;
3. otherwise, under the entry's cross-process lock (so that processes starting together build it
   once: the others wait, then read it), build from source, run every kernel once (on PoCL that
   compiles each kernel for its work-group size; a binary taken before would compile again at
   every start), and publish the binary.

The steps after the first (look, lock, look again, build, publish) are the core's
``KernelCache.get_or_build``; so are the entry's key, container, checksum, atomic publish, locks,
eviction and statistics (``ember.cache``). What went wrong is collected in the handle's
``problems``, which the core reports as one warning per compile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ember_gpu.persistent_cache import Kernel, KernelDescriptor, create_kernel, lookup_kernel

if TYPE_CHECKING:
    from ember.plugin import KernelCache


def obtain_kernel(descriptor: KernelDescriptor, store: KernelCache | None,
                  first_run: Callable[[Kernel], None]) -> Kernel:
    """The program of ``descriptor``; ``first_run`` launches its kernels once after a build that
    is then published, so that the published binary is complete."""
    found = lookup_kernel(descriptor)
    if found is not None:
        return found
    if store is None:
        return create_kernel(descriptor)

    def build() -> tuple[Kernel, bytes]:
        kernel = create_kernel(descriptor)
        first_run(kernel)
        return kernel, kernel.cache_blob()

    # A binary the driver refuses raises BlobRejectedError in create_kernel: the core then
    # rejects the entry and builds it again.
    return store.get_or_build(store.key(descriptor.cache_blob_id()), build,
                              lambda blob: create_kernel(descriptor, blob),
                              name=descriptor.name, architecture=descriptor.device.architecture)
