"""safeset: audit image datasets against known-abuse hash lists and write a cleaned copy."""

__version__ = "0.1.0"
