"""Engines schedule shards onto workers; the per-shard work itself lives in safeset.pipeline."""
