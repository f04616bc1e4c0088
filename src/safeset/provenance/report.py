"""``safeset inspect``: provenance findings per file, as JSON lines or short readable lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from safeset.progress import stderr
from safeset.provenance.c2pa import TrustAnchors
from safeset.provenance.deps import require
from safeset.provenance.inspect import KEYS, InspectOptions, inspect_file


def run_inspect(
    files: list[Path], *, json_lines: bool, trust_anchors: Path | None, face_swap: bool
) -> bool:
    """Print each file's findings; True if any file could not be read."""
    for module in ("c2pa", "pywt", "cv2"):
        require(module)  # say what to install before any work, not halfway through
    anchors = TrustAnchors.load(trust_anchors) if trust_anchors else None
    options = InspectOptions(trust_anchors=anchors, face_swap=face_swap)
    failed = False
    for path in files:
        result = inspect_file(path, options)
        if result.get("error") and all(result[k] is None for k in KEYS):
            failed = True
            stderr.print(f"safeset: {path}: {result['error']}", markup=False, highlight=False)
            if not json_lines:
                continue
        typer.echo(json.dumps(result, ensure_ascii=False) if json_lines else readable(result))
    return failed


def readable(result: dict[str, Any]) -> str:
    lines = [f"{result['file']}:"]
    c2pa = result["c2pa"]
    if c2pa:
        made = f", by {c2pa['claim_generator']}" if c2pa.get("claim_generator") else ""
        lines.append(f"  c2pa: {c2pa.get('validation')}{made}")
    source = result["digital_source_type"]
    if source:
        lines.append(f"  digital source type: {source['value']} (from {source['from']})")
    generator = result["generator"]
    if generator:
        model = f", model {generator['model']}" if generator.get("model") else ""
        lines.append(f"  generator: {generator['name']} ({generator['evidence']}{model})")
    mark = result["watermark"]
    if mark:
        lines.append(f"  watermark: {mark['name']} ({mark['bits_agreeing']} bits agree)")
    faces = result["face_swap"]
    if faces is not None:
        scores = ", ".join(
            f"{f['score']:.2f}" + ("" if f["reliable"] else " (small)") for f in faces
        )
        lines.append(f"  face swap scores: {scores or 'no face found'}")
    if result["opt_out"]:
        lines.append(f"  opt-out: {', '.join(result['opt_out'])}")
    if result.get("error"):
        lines.append(f"  error: {result['error']}")
    if len(lines) == 1:
        lines.append("  no provenance signal found")
    return "\n".join(lines)
