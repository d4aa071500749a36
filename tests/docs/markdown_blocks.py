"""Find the code blocks of the project's Markdown files, with the invisible directives before them.

A real CommonMark parser (markdown-it-py, already installed through rich) finds the fences, so a
fence inside a list, a longer fence around a shorter one, or a ```` ``` ```` in inline code is
read the way GitHub renders it; a regex would get those wrong.

Directives are HTML comments on the lines directly above a fence (they render as nothing):

``<!-- prelude: NAME[, NAME...] -->``
    run these hidden setups (``tests/docs/preludes.py``) before the block;
``<!-- continue -->``
    run in the namespace and folder of the file's previous block of the same kind (the doc reads
    as one session there); without it every block starts afresh in a new temporary folder;
``<!-- no-run: REASON -->``
    the block cannot run offline by nature; it is not run, and the suite lists it with REASON;
``<!-- file: NAME -->``
    the block (TOML, say) is the content of file NAME: it is written into the folder of every
    block of the same page before that block runs, and checked on its own (see test_docs.py).

An unknown directive, or one that is not directly above a fence, is an error: a typo must not
quietly turn a test off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^<!--\s*(prelude|continue|no-run|file)\b\s*:?\s*(.*?)\s*-->\s*$", re.S)
PYTHON = frozenset({"python", "py", "python3", "pycon"})
SHELL = frozenset({"console", "shell", "sh", "bash", "shell-session"})


class DirectiveError(Exception):
    """A directive comment is malformed or not attached to a fence."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, what it says, and how the suite must run it."""

    path: str  # relative to the repository root, with forward slashes
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    preludes: tuple[str, ...] = ()
    continues: bool = False
    no_run: str | None = None
    file: str | None = None
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        kind = "python" if self.lang in PYTHON else "shell" if self.lang in SHELL else "other"
        object.__setattr__(self, "kind", kind)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every page under docs/: the Markdown a reader is given."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def parse(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with its directives."""
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    blocks: list[Block] = []
    pending: list[tuple[int, str, str]] = []  # (line, name, argument) awaiting their fence
    last_end = -1
    for token in tokens:
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "html_block":
            match = DIRECTIVE.match(token.content.strip())
            if match is None:
                if re.match(r"^<!--\s*(prelude|continue|no.?run|norun|skip|file)", token.content):
                    raise DirectiveError(
                        f"{rel}:{start + 1}: malformed directive {token.content!r}"
                    )
                pending, last_end = [], end
                continue
            if pending and start != last_end:
                _orphans(rel, pending)
            pending.append((start + 1, match.group(1), match.group(2)))
            last_end = end
            continue
        if pending and (token.type != "fence" or start != last_end):
            _orphans(rel, pending)
        if token.type == "fence":
            lang = token.info.split()[0].lower() if token.info.strip() else ""
            blocks.append(_block(rel, start + 1, lang, token.content, pending))
        pending = []
    if pending:
        _orphans(rel, pending)
    return blocks


def _block(
    rel: str, line: int, lang: str, code: str, directives: list[tuple[int, str, str]]
) -> Block:
    preludes: list[str] = []
    continues = False
    no_run: str | None = None
    file: str | None = None
    for where, name, arg in directives:
        if name == "prelude":
            names = [n.strip() for n in arg.split(",") if n.strip()]
            if not names:
                raise DirectiveError(f"{rel}:{where}: prelude needs a name")
            preludes.extend(names)
        elif name == "continue":
            if arg:
                raise DirectiveError(f"{rel}:{where}: continue takes no argument, got {arg!r}")
            continues = True
        elif name == "file":
            if not arg or "/" in arg or arg.startswith("."):
                raise DirectiveError(f"{rel}:{where}: file needs a plain file name, got {arg!r}")
            file = arg
        else:
            if not arg:
                raise DirectiveError(f"{rel}:{where}: no-run needs a reason")
            no_run = arg
    return Block(rel, line, lang, code, tuple(preludes), continues, no_run, file)


def _orphans(rel: str, pending: list[tuple[int, str, str]]) -> None:
    where = ", ".join(str(line) for line, _, _ in pending)
    raise DirectiveError(f"{rel}:{where}: directive not directly above a fenced code block")


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in parse(path)]
