"""Signals: values computed from one sample (exact hashes, PDQ, scores) used for matching."""
