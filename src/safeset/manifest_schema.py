"""What manifest.csv's columns are, said in the one standard way CSV has: a W3C "CSV on the
Web" metadata file beside it (``manifest.csv-metadata.json``).

CSV cells carry no types, and readers guess: ``pandas.read_csv`` turns the key ``0000003`` into
the integer 3 and an empty url into NaN. The manifest itself cannot say otherwise (a cell such
as ``="0000003"`` would be a spreadsheet formula, which invariant 8 forbids), so its types are
stated beside it, for CSVW-aware tools and for people: every column is text but ``distance``.
Read it with ``pd.read_csv("manifest.csv", dtype=str, keep_default_na=False)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

INTEGER_COLUMNS = frozenset({"distance"})


def manifest_metadata(columns: Sequence[str], table_url: str = "manifest.csv") -> bytes:
    return json.dumps(
        {
            "@context": "http://www.w3.org/ns/csvw",
            "url": table_url,
            "dc:description": (
                "safeset removal manifest: flagged samples only. Every column is text (keys "
                "such as 0000003 keep their zeros) but distance; empty cells are empty "
                'strings. pandas: pd.read_csv("manifest.csv", dtype=str, keep_default_na=False)'
            ),
            "tableSchema": {
                "columns": [
                    {
                        "name": name,
                        "titles": name,
                        "datatype": "integer" if name in INTEGER_COLUMNS else "string",
                        "null": "" if name in INTEGER_COLUMNS else [],
                    }
                    for name in columns
                ]
            },
        },
        indent=2,
    ).encode()
