"""ember-template: the TEMPLATE reference device, and the skeleton to copy for a new plugin.

Nothing is imported here: the entry point loads ``ember_template.plugin``, which imports the rest
on first use, so that creating an ``ember.Core`` stays cheap.
"""
