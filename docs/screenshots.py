"""Screenshots of the built documentation at a desktop width (1400 px) and a phone's
(390 px), taken with headless Chromium, to look at what the site shows.

    sphinx-build -b html docs docs/_build/html
    apt-get install chromium   # Debian's; any Chromium or Chrome on the PATH will do
    python docs/screenshots.py                       # every page, into docs/_build/screens
    python docs/screenshots.py training performance  # some pages

The pages are served from ``docs/_build/html`` on a local port, so the site's own
scripts (the theme, the search box, MathJax) run as in a browser. Each screenshot is
the top ``--height`` pixels of the page (default 2400) at that width.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDTHS = {"desktop": 1400, "phone": 390}
# a closed network: no background connections, no component updates
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    raise SystemExit("error: no Chromium or Chrome on the PATH (apt-get install chromium)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per file served
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def shoot(chrome: str, url: str, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chrome,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=4000",  # MathJax and the theme's scripts run
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pages", nargs="*", help="page names (default: every top-level page)")
    p.add_argument("--site", default=str(HERE / "_build" / "html"))
    p.add_argument("--out", default=str(HERE / "_build" / "screens"))
    p.add_argument("--height", type=int, default=2400, help="px from the top (default 2400)")
    args = p.parse_args(argv)
    site, out = Path(args.site), Path(args.out)
    if not (site / "index.html").exists():
        raise SystemExit(f"error: {site} has no built site: sphinx-build -b html docs {site}")
    pages = args.pages or sorted(p.stem for p in site.glob("*.html") if p.stem[0] != "_")
    out.mkdir(parents=True, exist_ok=True)
    chrome = browser()
    server, port = serve(site)
    try:
        for page in pages:
            for kind, width in WIDTHS.items():
                path = out / f"{page}-{kind}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                url = f"http://127.0.0.1:{port}/{page}.html"
                shoot(chrome, url, path, width, args.height)
                if not path.exists():
                    raise SystemExit(f"error: {chrome} wrote no screenshot of {url}")
                print(path)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
