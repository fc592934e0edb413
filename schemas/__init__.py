"""Wire contracts of tierstream: the topic registry, input parsing and JSON Schema files."""
