"""The one compiled piece, optional: PDQIndex's probe loop (src/safeset/matching/_mih.c).

Where no C compiler is present the build skips it and the index searches with numpy alone,
with identical results. Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "safeset.matching._mih",
            ["src/safeset/matching/_mih.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
