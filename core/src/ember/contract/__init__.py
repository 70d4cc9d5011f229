"""The plugin contract: the hook specifications, the device description, the plugin manager
and its entry-point index, device aliases, the payload framing and parts, the host CPU, and
the property values every device accepts. Plugins reach it only through ``ember.plugin``.

May import ``ember.cache``, ``ember.store``, ``ember.model``, ``ember.common`` and the leaf
faces; never ``ember.runtime``."""
