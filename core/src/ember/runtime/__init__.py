"""The application API's implementation: ``Core``, ``CompiledModel``, infer requests and
results, tensors, the async queue, the AUTO device, ``query_model``, versions, and which value
of a property wins. ``ember`` hands these names on; applications import ``ember``.

May import every room below it (``contract``, ``cache``, ``store``, ``model``, ``common``)."""
