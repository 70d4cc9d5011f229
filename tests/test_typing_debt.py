"""ember_devtools.typing_debt turns mypy's errors into the overrides pyproject.toml records."""

from ember_devtools.typing_debt import debt, overrides

OUTPUT = """\
core/src/ember/runtime/auto.py:12: error: Missing type parameters for generic "dict"  [type-arg]
core/src/ember/runtime/auto.py:40: error: Argument 1 has incompatible type "int"  [arg-type]
plugins/cpu/src/ember_cpu/plugin.py:3: error: Returning Any from function  [no-any-return]
core/src/ember/testing/__init__.py:9: error: Returning Any from function  [no-any-return]
core/src/ember/runtime/auto.py:41: note: a note is not an error
Found 4 errors in 3 files (checked 155 source files)
"""


def test_errors_become_one_override_per_module():
    assert debt(OUTPUT) == {"ember.runtime.auto": {"type-arg", "arg-type"},
                            "ember_cpu.plugin": {"no-any-return"},
                            "ember.testing": {"no-any-return"}}
    text = overrides(debt(OUTPUT))
    assert '[[tool.mypy.overrides]]\nmodule = ["ember.runtime.auto"]\n' in text
    assert 'disable_error_code = ["arg-type", "type-arg"]' in text
    assert overrides({}) == ""
