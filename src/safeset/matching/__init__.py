"""Matchers: find hash-list entries for a sample's signals.

`pdq_index.PDQIndex` is the exact Hamming-radius index for 256-bit PDQ hashes.
"""
