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

The entry's key is the core's, from the program's cache blob id; the container, its checksum,
the atomic publish, the locks, eviction and statistics are all the core's (``ember.cache``). What
went wrong is collected in the handle's ``problems``, which the core reports as one warning per
compile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ember_gpu.persistent_cache import (
    BlobRejectedError,
    Kernel,
    KernelDescriptor,
    create_kernel,
    lookup_kernel,
)

if TYPE_CHECKING:
    from ember.cache import KernelCache
    from ember.cache.key import CacheKey


def obtain_kernel(descriptor: KernelDescriptor, store: KernelCache | None,
                  first_run: Callable[[Kernel], None]) -> Kernel:
    """The program of ``descriptor``; ``first_run`` launches its kernels once after a build that
    is then published, so that the published binary is complete."""
    found = lookup_kernel(descriptor)
    if found is not None:
        return found
    if store is None:
        return create_kernel(descriptor)
    key = store.key(descriptor.cache_blob_id())
    noted = len(store.problems)
    kernel = _from_entry(descriptor, store, key)  # a hit needs no lock
    if kernel is not None:
        return kernel
    unusable = len(store.problems) > noted  # an entry exists, damaged or rejected: rebuild it
    from ember.cache.cached_compile import lock_timeout

    timeout = lock_timeout()
    with store.lock(key, timeout) as locked:
        if locked and not unusable:  # the process we waited for may have published it
            kernel = _from_entry(descriptor, store, key)
            if kernel is not None:
                return kernel
        elif not locked:
            store.problems.append(f"waited {timeout:.1f} s for another process building "
                                  f"{descriptor.name}; built it here too")
        kernel = create_kernel(descriptor)
        first_run(kernel)
        store.put(key, kernel.cache_blob(), name=descriptor.name,
                  architecture=descriptor.device.architecture)
        return kernel


def _from_entry(descriptor: KernelDescriptor, store: KernelCache, key: CacheKey) -> Kernel | None:
    """The kernel from the entry's binary; None when there is no usable entry (a damaged one is
    noted by ``get``, a rejected one reported with ``reject``)."""
    blob = store.get(key)
    if blob is None:
        return None
    try:
        return create_kernel(descriptor, blob)
    except BlobRejectedError as exc:
        store.reject(key, str(exc))
        return None
