"""The device-plugin contract: every hook a plugin may implement, each a stub whose docstring is
its contract.

A plugin is a module or object registered in the entry-point group ``ember.devices``; it implements
some of these hooks with the ``@ember.hookimpl`` decorator, with the same names and any subset of
the arguments. Hooks that act on a device (all but :func:`list_devices`) are *dispatch hooks*:
they receive the full device name (``"GPU.1"``, never the bare ``"GPU"``) and must return ``None``
at once when that device is not the plugin's own (``firstresult``: the hook's value is the first
non-None answer). The core asks only the plugin that listed the device, but a plugin must not
rely on that: tools and tests may call hooks through the plugin manager directly. The core
always calls hooks by keyword. Hooks may gain arguments in later
versions, never lose or rename one: implement only the arguments you use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from ember.cache.kernel_cache import KernelCache
    from ember.contract.device import DeviceModel
    from ember.model.model import Model

PROJECT_NAME = "ember"

#: The version of this contract. A plugin says which one it was written for with a module (or
#: object) attribute ``EMBER_CONTRACT_VERSION``; the core refuses one written for a contract it
#: does not speak, with a message saying what to upgrade. Adding an optional hook argument does not
#: change the version; removing or changing the meaning of anything does.
CONTRACT_VERSION = 1
SUPPORTED_CONTRACT_VERSIONS = frozenset({1})

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's hook implementation; exported as ``ember.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


@hookspec
def list_devices() -> Sequence[str]:
    """Name the devices this plugin can run on this machine now.

    Return full names: one name (``["TEMPLATE"]``) for a device that exists once, or indexed names
    (``["GPU.0", "GPU.1"]``) when there can be several; users may then say ``"GPU"`` for the first.
    Return an empty sequence when the hardware or its driver is absent: that is not an error. This
    hook is called once per :class:`ember.Core`; keep it cheap (do not compile anything) and import
    heavy dependencies inside it, not at module import.

    :returns: the device names; the core calls every plugin and merges the lists.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def explain_absence(device_kind: str) -> str | None:
    """Say why no device of this kind is listed, and what would make one appear.

    Called only when a user asks for a device that no plugin lists (``GPU`` with no OpenCL
    driver, say), to put the reason in the ``UnknownDeviceError``.

    :param device_kind: the device name without an index, as the user spelled it (``"GPU"``).
    :returns: ``None`` when the kind is not this plugin's or there is nothing useful to say;
        otherwise one sentence, such as ``"no OpenCL platform found; pip install
        pocl-binary-distribution for PoCL's CPU device"``.

    .. versionadded:: 0.1
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def supported_metrics(device_name: str) -> Mapping[str, Any] | None:
    """Describe a device: its read-only properties (*metrics*) and its writable ones.

    :param device_name: a full device name, as returned by :func:`list_devices`.
    :returns: ``None`` when ``device_name`` is not this plugin's. Otherwise a mapping with at least

        - ``"FULL_DEVICE_NAME"`` (str): what the hardware is, truthfully;
        - ``"DEVICE_ARCHITECTURE"`` (str): what compiled code depends on (ISA, driver version...);
        - ``"OPTIMIZATION_CAPABILITIES"`` (list of str): ``"EXPORT_IMPORT"`` when
          :func:`export_model` and :func:`import_model` are implemented, ``"ENCRYPTION"`` when
          export honours ``CACHE_ENCRYPTION_CALLBACKS``, and the precisions it runs (``"FP32"``);
        - ``"SUPPORTED_CONFIG_KEYS"`` (mapping of str to default value): the writable properties
          the device accepts in ``config`` and ``set_property``, with their defaults;
        - ``"CACHING_PROPERTIES"`` (list of str): the names, among the metrics and config keys,
          whose values change the compiled result; the model cache keys on their values.

        - ``"SUPPORTED_OPERATORS"`` (list of str, optional): the ONNX operator types the device
          runs; the conformance suite holds the device to them with ONNX's own node tests.

        Further read-only metrics may be added under any upper-case name. The core adds
        ``SUPPORTED_PROPERTIES``, ``SUPPORTED_METRICS`` and ``IMPORT_EXPORT_SUPPORT`` itself.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# Compiling, exporting, importing
# --------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def compile(
    model: Model, device_name: str, config: Mapping[str, Any], cache: KernelCache | None
) -> DeviceModel | None:
    """Compile a model for a device: the slow, cacheable work happens here.

    :param model: the model as read by :meth:`ember.Core.read_model`: its ports, opsets and
        metadata come from the file's header; ``model.proto`` (the ONNX ModelProto, with the
        recorded edits applied; do not modify it) is parsed the first time it is read. When
        ``cache`` is given and the application passed a path or bytes, it is an
        :class:`ember.model.model.DeferredModel`: not even the header is read until the ports or
        ``proto`` are (raising what ``read_model`` raises), so that a device whose cache holds
        all it needs reads nothing; ``cache.model_digest(model)`` gives its content digest
        without parsing.
    :param device_name: a full device name.
    :param config: the device's effective configuration: every key of ``SUPPORTED_CONFIG_KEYS``
        with the user's value or the default, validated by the core against the names (values are
        the plugin's to check: raise :class:`ember.errors.PropertyValueError` for a bad one).
    :param cache: with ``CACHE_DIR`` set, a handle on the core's cache for what the device builds
        below the level of a whole model (compiled OpenCL programs, as OpenVINO's GPU plugin
        keeps in ``.cl_cache`` files). ``None`` without a cache directory. Obtain each piece
        with ``cache.get_or_build(cache.key(blob_id), build, load)``: it reads the entry and
        passes its payload to ``load`` (no lock on a hit); otherwise it takes the entry's
        cross-process lock (at most the lock timeout, ``EMBER_CACHE_LOCK_TIMEOUT``), looks
        again, calls ``build()`` (which returns the object and the payload to store) and
        publishes the payload. A payload ``load`` raises for is rejected and rebuilt; problems
        are noted in ``cache.problems``, never raised. The lower-level ``get``, ``put``,
        ``lock``, ``reject`` and ``has`` remain for other uses. The handle may be kept for
        builds after ``compile`` (a model with dynamic shapes built at its first inference);
        call ``report()`` after such a build, as the core does after ``compile``. Devices with
        ``EXPORT_IMPORT`` are cached whole by the core and can ignore it.

        .. versionadded:: 0.1
    :returns: ``None`` when ``device_name`` is not this plugin's; otherwise an object following
        :class:`ember.contract.device.DeviceModel`.
    :raises ember.errors.UnsupportedOperatorError: for the first node the device cannot run.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def export_model(
    compiled_model: DeviceModel, device_name: str, config: Mapping[str, Any], weightless: bool
) -> bytes | None:
    """Serialize a compiled model so that :func:`import_model` can rebuild it without compiling.

    Only called for devices whose capabilities include ``EXPORT_IMPORT``. Return the payload only:
    the core wraps it in its own container (header, versions, checksum), so do not add a checksum or
    a version check of the core's. The payload must never need ``pickle`` or ``eval`` to read back.

    :param compiled_model: an object this plugin returned from :func:`compile` or
        :func:`import_model`.
    :param device_name: a full device name.
    :param config: as for :func:`compile`; when it holds ``CACHE_ENCRYPTION_CALLBACKS`` (an
        ``(encrypt, decrypt)`` pair of bytes-to-bytes functions) and the device declares
        ``ENCRYPTION``, the topology must be written through ``encrypt``.
    :param weightless: True only for devices that list ``WEIGHTLESS_CACHE``, when the model was
        compiled from a file with ``CACHE_MODE=OPTIMIZE_SIZE``: leave out the weights that are the
        model's own initializers (record their names and checksums); :func:`import_model` gets
        the file back as ``weights_path``.

        .. versionadded:: 0.1
    :returns: ``None`` when ``device_name`` is not this plugin's; otherwise the payload bytes.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def import_model(
    data: bytes | memoryview, device_name: str, config: Mapping[str, Any],
    weights_path: Path | None,
) -> DeviceModel | None:
    """Rebuild a compiled model from a payload written by :func:`export_model`.

    The core has already checked the container's checksum, producer and device; the plugin checks
    its own payload format version and raises :class:`ember.errors.BlobFormatError` for one it
    cannot read (the model cache then recompiles).

    :param data: the payload, a bytes-like object: ``bytes`` or a read-only ``memoryview`` into a
        larger buffer (``numpy.frombuffer`` reads either without a copy; call ``bytes(data)`` only
        where a library needs it).
    :param device_name: a full device name.
    :param config: as for :func:`export_model`; ``decrypt`` is used when the payload is encrypted.
    :param weights_path: for a weightless payload, the ONNX file whose initializers it refers to
        (the cache key holds that file's checksum, so it is the file that was compiled); check
        each weight against what the payload recorded and raise BlobFormatError otherwise.
        ``None`` for a complete payload.

        .. versionadded:: 0.1
    :returns: ``None`` when ``device_name`` is not this plugin's; otherwise the compiled model,
        whose outputs must equal, bit for bit, those of the model that was exported.
    """
    raise NotImplementedError
