"""Every code block of README.md and docs/*.md runs here, so a doc cannot rot.

One test per block, id ``file:line`` (the opening fence). Python blocks are executed as written;
``console`` blocks run each ``$ costwarden ...`` line through the real CLI, and each ``$ curl ...``
line through bash and the real curl (against servers a prelude started on 127.0.0.1). Each block
starts in a fresh temporary folder with a fresh namespace, unless a ``<!-- continue -->`` comment
above it says the page reads as one session; hidden setups come from ``<!-- prelude: NAME -->``
(tests/docs/preludes.py). A block that cannot run offline by nature carries
``<!-- no-run: REASON -->``: it is reported as skipped with its reason (``-ra`` lists them), and
``test_no_run_blocks_are_few`` keeps their number down. See tests/docs/markdown_blocks.py.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.docs.markdown_blocks import ROOT, Block, DirectiveError, all_blocks, parse
from tests.docs.preludes import PRELUDES, Session

BLOCKS = all_blocks()
FILE_BLOCKS = [b for b in BLOCKS if b.file]
PYTHON_BLOCKS = [b for b in BLOCKS if b.kind == "python"]
SHELL_BLOCKS = [b for b in BLOCKS if b.kind == "shell"]
MAX_NO_RUN = 0  # today every block runs offline; raise it only with a reason in the doc

_sessions: dict[tuple[str, str], Session] = {}  # (file, kind) -> the session a block continues
# Threads alive before the first block ran (other test modules' pools may still be winding down):
# the blocks answer only for the threads they started.
_threads_before: set[int] | None = None


@pytest.fixture(scope="module", autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    while _sessions:
        _sessions.popitem()[1].close()


def _session(block: Block, tmp_path_factory: pytest.TempPathFactory) -> Session:
    global _threads_before
    if _threads_before is None:
        _threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
    key = (block.path, block.kind)
    if block.continues:
        if key not in _sessions:
            pytest.fail(f"{block.id}: <!-- continue --> but no earlier block of this file ran")
        session = _sessions[key]
        if session.failed:
            pytest.skip(f"continues {session.failed}, which failed")
    else:
        if key in _sessions:
            _sessions.pop(key).close()
        folder = tmp_path_factory.mktemp(block.id.replace("/", "_").replace(":", "_"))
        session = Session({"__name__": "__docs__"}, folder, pytest.MonkeyPatch())
        for name in ("COSTWARDEN_CONFIG", "COSTWARDEN_LEDGER"):
            session.monkeypatch.delenv(name, raising=False)
        session.monkeypatch.setenv("COLUMNS", "200")
        _sessions[key] = session
        for page_file in FILE_BLOCKS:
            if page_file.path == block.path:
                (folder / str(page_file.file)).write_text(page_file.code)
    for name in block.preludes:
        if name not in PRELUDES:
            pytest.fail(f"{block.id}: unknown prelude {name!r}; known: {sorted(PRELUDES)}")
        with _in(session.folder):
            PRELUDES[name](session)
    return session


class _in:
    """chdir for the duration of a block (restored even if it raises)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.previous = folder, Path.cwd()

    def __enter__(self) -> None:
        os.chdir(self.folder)

    def __exit__(self, *exc: object) -> None:
        os.chdir(self.previous)


def _run_python(block: Block, session: Session) -> None:
    # Leading newlines put each statement on its own line of the Markdown file in tracebacks.
    code = compile("\n" * block.line + block.code, str(ROOT / block.path), "exec")
    with _in(session.folder):
        try:
            exec(code, session.namespace)
        finally:
            session.note_managers()


def _run_shell(block: Block, session: Session) -> None:
    from costwarden.cli.app import app

    for offset, raw in enumerate(block.code.splitlines(), start=block.line + 1):
        if not raw.startswith("$ "):
            continue  # output shown in the doc
        words = shlex.split(raw[2:], comments=True)
        where = f"{block.path}:{offset}"
        if words[0] == "export" and len(words) == 2 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            session.monkeypatch.setenv(name, value)
        elif words[0] == "costwarden":
            with _in(session.folder):
                result = CliRunner().invoke(app, words[1:])
            assert result.exit_code == 0, f"{where}: {raw}\n{result.output}"
        elif words[0] == "curl":
            _run_curl(raw[2:], where, session)
        else:
            pytest.fail(
                f"{where}: the docs tests only run `costwarden`, `curl` and `export`: {raw}"
            )


def _run_curl(line: str, where: str, session: Session) -> None:
    """A ``curl`` line as a reader's shell runs it (variables expanded), against the servers a
    prelude started on 127.0.0.1; it must succeed with a 2xx (``--fail-with-body``)."""

    urls = [w for w in map(os.path.expandvars, shlex.split(line)) if "://" in w]
    assert urls and all(u.startswith("http://127.0.0.1:") for u in urls), f"{where}: loopback only"
    words = shlex.split(line)
    fail = "" if {"--fail", "-f", "--fail-with-body"} & set(words) else "--fail-with-body "
    command = f"curl -sS {fail}--max-time 20 " + line.removeprefix("curl ")
    done = subprocess.run(
        ["bash", "-c", command], cwd=session.folder, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"{where}: {line}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", PYTHON_BLOCKS + SHELL_BLOCKS, ids=lambda b: b.id)
def test_doc_block(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.no_run:
        pytest.skip(f"no-run: {block.no_run}")
    session = _session(block, tmp_path_factory)
    try:
        (_run_python if block.kind == "python" else _run_shell)(block, session)
    except BaseException:
        session.failed = block.id
        raise


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=lambda b: f"{b.id}:{b.file}")
def test_doc_file(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file shown in a doc is valid as it stands: the loader it is meant for accepts it."""
    from costwarden.alerts import load_alert_config
    from costwarden.config import load_config
    from costwarden.pricing import PriceCatalog

    path = tmp_path / str(block.file)
    path.write_text(block.code)
    for name in ("COSTWARDEN_SLACK_WEBHOOK", "COSTWARDEN_SMTP_PASSWORD"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/unused")
    monkeypatch.setenv("COSTWARDEN_WEBHOOK_SECRET", "whsec_" + "A" * 32)
    if block.file == "costwarden.toml":
        config = load_config(path)
        if "gateway" in config.sections:
            from costwarden.gateway import parse_gateway

            parse_gateway(config.sections["gateway"])
        if config.alerts:
            load_alert_config(path)  # builds the channels, as --check-alerts does
    elif block.file == "prices.toml":
        PriceCatalog(path)
    else:
        pytest.fail(f"{block.id}: no check known for a file named {block.file!r}")


def test_every_python_block_is_collected() -> None:
    """The parser sees as many python fences as a plain line scan (nothing hides from it)."""
    scanned = 0
    for path in {ROOT / b.path for b in BLOCKS} | {ROOT / "README.md"}:
        scanned += sum(
            1 for line in path.read_text().splitlines() if line.strip() in ("```python", "```py")
        )
    assert len(PYTHON_BLOCKS) == scanned


def test_zz_sessions_leave_no_threads_behind() -> None:
    """Runs after the blocks (defined after them): closing the sessions stops their threads,
    and leaves no socket or file for the garbage collector (a ResourceWarning the collection
    below raises here, in this test, rather than in whichever test the collector next runs
    in)."""
    import gc
    import time

    before = _threads_before or set()
    while _sessions:
        _sessions.popitem()[1].close()
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("costwarden") and t.ident not in before
        ]
        if not left:
            break
        time.sleep(0.05)
    assert not left, left


def test_no_run_blocks_are_few() -> None:
    skipped = [f"{b.id}: {b.no_run}" for b in BLOCKS if b.no_run]
    assert len(skipped) <= MAX_NO_RUN, "blocks that are never run:\n" + "\n".join(skipped)


def test_directives_are_read_and_typos_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n<!-- prelude: upstream, alert-endpoints -->\n```python\nx = 1\n```\n\n"
        "  - item\n\n    <!-- continue -->\n    ```py\n    y = x\n    ```\n\n"
        "<!-- no-run: needs a real OpenAI key -->\n```python\nimport openai\n```\n\n"
        "<!-- file: prices.toml -->\n```toml\n[models.a]\n```\n\n"
        "```console\n$ costwarden demo\n```\n"
    )
    first, second, third, toml, shell = parse(page)
    assert (first.id, first.preludes, first.continues) == (
        "page.md:4",
        ("upstream", "alert-endpoints"),
        False,
    )
    assert (second.kind, second.continues, second.code) == ("python", True, "y = x\n")
    assert third.no_run == "needs a real OpenAI key"
    assert (toml.kind, toml.file) == ("other", "prices.toml")
    assert shell.kind == "shell"
    for bad in (
        "<!-- prelude -->\n```python\n```\n",  # no name
        "<!-- no-run -->\n```python\n```\n",  # no reason
        "<!-- continue: yes -->\n```python\n```\n",
        "<!-- norun: x -->\n```python\n```\n",  # misspelt: must not be ignored
        "<!-- continue -->\n\nSome text.\n\n```python\n```\n",  # not above a fence
        "<!-- file: ../x.toml -->\n```toml\n```\n",
    ):
        page.write_text(bad)
        with pytest.raises(DirectiveError):
            parse(page)


def test_relative_links_point_at_files_in_the_repository() -> None:
    """A link such as ``../shared/DESIGN.md`` that leaves the repository (or names a missing
    file) is broken for every reader of the published docs."""
    from markdown_it import MarkdownIt

    from tests.docs.markdown_blocks import doc_files

    broken = []
    for path in doc_files():
        for token in MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")):
            for child in token.children or ():
                href = str(child.attrs.get("href", "")) if child.type == "link_open" else ""
                if child.type == "code_inline" and child.content.startswith("../"):
                    href = child.content  # a path named in backticks is read as a path too
                if not href or href.startswith(("http://", "https://", "mailto:", "#")):
                    continue
                target = (path.parent / href.split("#", 1)[0]).resolve()
                if not target.is_relative_to(ROOT) or not target.exists():
                    broken.append(f"{path.relative_to(ROOT)}: {href}")
    assert not broken, broken
