"""The report's screenshots in docs/images/: a synthetic fortnight of practice, laid out at a phone's,
a tablet's and a desktop's width by Debian's chromium.

    python -m qa.report_screenshots [--out docs/images]
"""

import argparse
import io
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from host.report import build
from qa import synthetic
from tools import chromium

WIDTHS = {
    390: 1500,
    768: 1300,
    1280: 1100,
}  # width: height shown (the top of the page: header, trend, sessions)


def main(argv=None):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic.journal(Path(tmp) / "P-0042", minutes=20)
        html = Path(tmp) / "report.html"
        build(folder, html, made=datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
        with sync_playwright() as p:
            browser = chromium.launch(p, shutil.which("chromium"))
            page = browser.new_page()
            for width, height in WIDTHS.items():
                page.set_viewport_size({"width": width, "height": height})
                page.goto(html.as_uri())
                png = page.screenshot()
                # a palette of 256 colours: a fraction of the size, thin coloured lines kept
                img = (
                    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
                )
                path = out / f"report-{width}.png"
                img.save(path, optimize=True)
                print(f"{path} ({width:d} x {height:d}, {path.stat().st_size // 1024:d} kB)")
            browser.close()


if __name__ == "__main__":
    main()
