"""The dashboard's vendored assets are the files VENDORED.md records (sha256), every one it
lists is there, and the pages load nothing else: no CDN, nothing that needs the internet."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import costwarden.dashboard

PKG = Path(costwarden.dashboard.__file__).parent
VENDOR = PKG / "static" / "vendor"


def recorded() -> dict[str, str]:
    text = (PKG / "VENDORED.md").read_text()
    row = r"^\| (\S+) \| [^|]+ \| [^|]+ \| [^|]+ \| `([0-9a-f]{64})` \|$"
    return dict(re.findall(row, text, re.M))


def test_every_vendored_file_matches_its_recorded_checksum() -> None:
    sums = recorded()
    assert set(sums) == {p.name for p in VENDOR.iterdir()}, "VENDORED.md and static/vendor differ"
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_htmx_is_the_pinned_2_0_release() -> None:
    head = (VENDOR / "htmx-2.0.11.min.js").read_text()
    assert 'version:"2.0.11"' in head.replace(" ", "")


def test_templates_and_scripts_name_no_remote_url() -> None:
    static = [PKG / "static" / "app.js", PKG / "static" / "app.css"]
    for path in [*PKG.glob("templates/**/*.html"), *static]:
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path
    page = (PKG / "templates" / "page.html").read_text()
    for name in recorded():
        if name.endswith((".js", ".css")):
            assert f"static/vendor/{name}" in page, name
