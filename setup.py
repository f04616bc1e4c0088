"""The compiled pieces, both optional: PDQIndex's probe loop (src/safeset/matching/_mih.c) and
the fast PDQ's resampling and quality loops (src/safeset/signals/_pdq.c).

Where no C compiler is present the build skips them and numpy does the same work. Everything
else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "safeset.matching._mih",
            ["src/safeset/matching/_mih.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "safeset.signals._pdq",
            ["src/safeset/signals/_pdq.c"],
            optional=True,
            # The quality must round as numpy does: no fused multiply-adds.
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
    ]
)
