"""What every room of Ember uses: the one logger, the one content hash, the one reader of
untrusted JSON, the one parser of byte sizes. Imports nothing of Ember but ``ember.errors``."""
