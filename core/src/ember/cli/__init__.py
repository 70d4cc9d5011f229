"""The ``ember`` command line: devices, ahead-of-time compiles, single runs, the model cache, the
model store and benchmarks. The entry point is :func:`ember.cli.main.main`; each command group
lives in its own module. See docs/store-and-cli.md.
"""
