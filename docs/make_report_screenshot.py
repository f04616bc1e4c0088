"""Make docs/report-demo.png: the report of `safeset demo`, as headless Chromium shows it.

    python docs/make_report_screenshot.py      # needs /usr/bin/chromium and the test extra

Runs the demo in a temporary folder, opens its scan's report.html with the browser test's
helper (every request but the page itself refused), and saves the top of the page as a
palette PNG, small enough for the README.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safeset.demo import run_demo  # noqa: E402
from tests.browser import open_page  # noqa: E402

OUT = ROOT / "docs" / "report-demo.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        run_demo(demo, quiet=True)
        with open_page(demo / "scan" / "report.html", width=1100, height=1500) as opened:
            if opened.foreign_requests or opened.console_errors or opened.page_errors:
                raise SystemExit(f"the page misbehaved: {opened}")
            png = opened.page.screenshot(clip={"x": 0, "y": 0, "width": 1100, "height": 1500})
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE)
    img.save(OUT, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
