"""Wire contracts of tierstream, the floor everything stands on: the topic registry, the
wire vocabulary and the JSON Schema files. Imports nothing of tierstream's own."""
