"""Tools for developing Ember itself, kept out of the shipped ``ember.testing`` kit.

- :mod:`ember_devtools.fuzz`: the seeded mutation fuzzer over every format Ember reads back
  (``python -m ember_devtools.fuzz``); its targets and forger live in the core
  (``ember.testing.fuzz_targets``, ``ember.testing.forge``) since they reach into its parsers,
  and this distribution imports only ``ember``, ``ember.plugin`` and ``ember.testing``;
- :mod:`ember_devtools.node_report`: the ONNX node-test baseline of this repository and the table
  in docs/conformance.md.

``ember-devtools`` is a distribution of this repository only (``make install`` installs it,
editable); it is never published.
"""
