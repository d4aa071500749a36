"""``costwarden status`` as a picture for the README: the real command's output, rendered.

``python -m tests.status_screenshot [PATH]`` (default ``docs/img/costwarden-status.png``)
fills a throwaway SQLite ledger with a few hours of calls up to now under stored budgets,
runs ``costwarden status`` and ``costwarden status --user alice`` as real processes with
colour forced on (``FORCE_COLOR``, 100 columns), turns their ANSI output into HTML with rich
(``Text.from_ansi``, inline styles, no web font) and has Debian's chromium (driven by
playwright, as the dashboard's browser tests do) screenshot it. ``tests/test_status_screenshot.py``
runs the same into ``artifacts/status/`` and checks the page shows exactly what the commands
printed.
"""

from __future__ import annotations

import html
import io
import os
import random
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from costwarden import Budget, BudgetManager, UsageRecord

CHROMIUM: Final = "/usr/bin/chromium"
ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
COMMANDS: Final = (("status",), ("status", "--user", "alice"))
COLUMNS: Final = 100
DEFAULT_OUT: Final = (
    Path(__file__).resolve().parent.parent / "docs" / "img" / "costwarden-status.png"
)
_CALLS: Final = (  # model, input tokens, output tokens
    ("gpt-4o-mini", 1_800, 350),
    ("gpt-4o", 2_400, 600),
    ("claude-haiku-4-5", 1_500, 400),
    ("claude-sonnet-4-5", 3_000, 900),
)


def fill(url: str, now: datetime, *, seed: int = 7) -> None:
    """Budgets stored in the ledger and ~300 calls of three users over the 9 hours to ``now``."""
    rng = random.Random(seed)
    with BudgetManager(ledger=url) as manager:
        manager.set_budget(Budget(daily_limit=25.0, monthly_limit=400.0, per_request_limit=0.5))
        manager.set_budget(Budget(daily_limit=4.0, monthly_limit=60.0), user="alice")
        manager.set_budget(Budget(daily_limit=12.0), team="research")
        for i in range(300):
            model, n_in, n_out = rng.choice(_CALLS)
            user = rng.choice(("alice", "alice", "bob", "carol"))
            manager.record_spend(
                UsageRecord(
                    model=model,
                    input_tokens=int(n_in * rng.uniform(0.3, 1.7)),
                    output_tokens=int(n_out * rng.uniform(0.3, 1.7)),
                    user_id=user,
                    team="sales" if user == "carol" else "research",
                    timestamp=now - timedelta(seconds=rng.uniform(60, 9 * 3600)),
                    request_id=f"shot-{i}",
                )
            )


def run_command(url: str, args: tuple[str, ...], cwd: Path) -> str:
    """The ANSI output of ``costwarden <args>`` run as a real process on ``url``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COSTWARDEN_CONFIG")}
    env.update(COSTWARDEN_LEDGER=url, FORCE_COLOR="1", COLUMNS=str(COLUMNS), TERM="xterm-256color")
    done = subprocess.run(
        [sys.executable, "-m", "costwarden.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def terminal_html(blocks: list[tuple[str, str]]) -> str:
    """A terminal window showing each ``(command line, ANSI output)`` after a prompt."""
    from rich.console import Console
    from rich.terminal_theme import MONOKAI
    from rich.text import Text

    console = Console(
        record=True,
        width=COLUMNS,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    for i, (command, output) in enumerate(blocks):
        if i:
            console.print()
        console.print(Text("$ ", style="bold green") + Text(command, style="bold"))
        console.print(Text.from_ansi(output), end="")
    code = console.export_html(theme=MONOKAI, inline_styles=True, code_format="{code}")
    bg, fg = ("#" + bytes(c).hex() for c in (MONOKAI.background_color, MONOKAI.foreground_color))
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #e9ecef; padding: 24px; display: inline-block; }}
.window {{ background: {bg}; color: {fg}; border-radius: 8px; box-shadow: 0 4px 18px #0004;
  display: inline-block; }}
.bar {{ padding: 9px 12px; }} .bar span {{ display: inline-block; width: 12px; height: 12px;
  border-radius: 50%; margin-right: 6px; }}
pre {{ margin: 0; padding: 4px 18px 16px; font: 14px/1.17 'DejaVu Sans Mono', monospace; }}
</style></head><body><div class="window"><div class="bar"><span style="background:#ff5f57">
</span><span style="background:#febc2e"></span><span style="background:#28c840"></span></div>
<pre id="terminal">{code}</pre></div></body></html>"""


def screenshot(page_html: str, out: Path) -> str:
    """Render ``page_html`` in chromium and save the window as ``out``; the text it shows."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(device_scale_factor=1)
            outside: list[str] = []
            page.route("**/*", lambda route: (outside.append(route.request.url), route.abort()))
            page.set_content(page_html)
            assert not outside, f"the page asked for {outside}"
            page.locator(".window").screenshot(path=str(out))
            shown: str = page.inner_text("#terminal")
        finally:
            browser.close()
    return shown


def make(out: Path, workdir: Path) -> dict[str, Any]:
    """Fill a ledger in ``workdir``, run the commands, write the picture to ``out``; what
    was printed (plain text) and what the page shows, for the test."""
    url = f"sqlite:///{workdir / 'spend.db'}"
    fill(url, datetime.now(UTC))
    blocks = [
        (shlex.join(("costwarden", *args)), run_command(url, args, workdir)) for args in COMMANDS
    ]
    page_html = terminal_html(blocks)
    shown = screenshot(page_html, out)
    return {"blocks": blocks, "shown": shown, "html": html.unescape(page_html)}


def main(argv: list[str]) -> None:
    """Write the picture to ``argv[0]`` (default :data:`DEFAULT_OUT`)."""
    out = Path(argv[0]) if argv else DEFAULT_OUT
    with tempfile.TemporaryDirectory(prefix="cw-status-shot-") as tmp:
        make(out, Path(tmp))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
