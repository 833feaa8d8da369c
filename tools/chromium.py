"""Debian's chromium under Playwright, for the browser tests and benchmarks.

Playwright drives the system's chromium (never a browser download of its
own), headless, kept off the network and away from anything of the machine's.
"""

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright, executable):
    """A headless chromium Browser from a sync_playwright() context."""
    return playwright.chromium.launch(executable_path=executable, args=ARGS)
