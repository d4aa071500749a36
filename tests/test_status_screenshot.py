"""The README's picture of ``costwarden status`` is the real command's output: the page that
``tests/status_screenshot.py`` renders in chromium shows exactly what the commands printed,
and the picture is written (to ``artifacts/status/``; ``python -m tests.status_screenshot``
writes docs/img/costwarden-status.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import status_screenshot

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "status"

if not Path(status_screenshot.CHROMIUM).exists():
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{status_screenshot.CHROMIUM} is missing (scripts/test-services.sh)")
    pytest.skip(
        f"{status_screenshot.CHROMIUM} is missing: apt-get install chromium",
        allow_module_level=True,
    )

pytest.importorskip("playwright.sync_api")


def test_the_status_picture_shows_what_the_command_printed(tmp_path: Path) -> None:
    from rich.text import Text

    out = ARTIFACTS / "costwarden-status.png"
    made = status_screenshot.make(out, tmp_path)
    want: list[str] = []
    for i, (command, ansi) in enumerate(made["blocks"]):
        assert "\x1b[" in ansi, "colour was not forced on"
        want += ([""] if i else []) + [f"$ {command}", *Text.from_ansi(ansi).plain.splitlines()]
    shown = [line.rstrip() for line in made["shown"].splitlines()]
    assert shown == [line.rstrip() for line in want]
    assert any("Budget status: global (UTC)" in line for line in shown)
    assert any("Budget status: user:alice (UTC)" in line for line in shown)
    assert any(line.split("│")[1:2] == [" daily   "] for line in shown)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 600 and height > 300, (width, height)
