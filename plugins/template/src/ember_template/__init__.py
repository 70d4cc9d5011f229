"""ember-template: the TEMPLATE reference device, and the skeleton to copy for a new plugin."""

from ember_template.compiled_model import TemplateCompiledModel

__all__ = ["TemplateCompiledModel"]
