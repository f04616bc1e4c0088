"""Signals: facts computed from one sample (hashes, image facts, scores)."""
