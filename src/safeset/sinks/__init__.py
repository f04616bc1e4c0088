"""Sinks write the cleaned dataset in its source's own format, kept samples byte-identical."""
