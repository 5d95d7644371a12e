"""How tests and benchmarks start Debian's chromium for Playwright (its own browser
download does not work on a closed network)."""

from __future__ import annotations

import shutil

# Without the background-networking flags chromium keeps dialling Google's services,
# which a closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MISSING = ("chromium is not installed: the console's browser tests need Debian's chromium "
           "package (apt-get install -y chromium; .ci/run installs it)")


def chromium() -> str | None:
    """The chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")
