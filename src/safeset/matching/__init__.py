"""Indexes that find hash-list entries for a sample's signals."""
