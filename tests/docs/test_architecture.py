"""docs/architecture.md's layout tree is the tree: one line for every module, in a true order.

The layout is a ``text`` block (it is not run as code), so nothing else would notice a module
added, moved or removed without its line; and its root modules are listed from the bottom of
the house up, which an import added later could make untrue.
"""

from __future__ import annotations

import ast
import re

from markdown_it import MarkdownIt

from tests.docs.markdown_blocks import ROOT

SRC = ROOT / "src" / "costwarden"
LINE = re.compile(r"^((?:│   |    )*)(?:├── |└── )(\S+)(?:\s+(\S.*))?$")


def layout_lines() -> list[tuple[str, str]]:
    """``(path under src/costwarden, its one line)`` for every entry of the layout tree."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    fences = [
        t.content
        for t in MarkdownIt("commonmark").parse(text)
        if t.type == "fence" and t.content.startswith("src/costwarden/\n")
    ]
    assert len(fences) == 1, "docs/architecture.md needs one tree that starts src/costwarden/"
    entries: list[tuple[str, str]] = []
    folders: list[str] = []
    for line in fences[0].splitlines()[1:]:
        match = LINE.match(line)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match.group(1)) // 4
        name = match.group(2)
        folders = folders[:depth]
        entries.append(("/".join([*folders, name.rstrip("/")]), match.group(3) or ""))
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
    return entries


def test_the_layout_lists_every_module_once_with_a_line() -> None:
    entries = layout_lines()
    listed = [path for path, _ in entries if path.endswith(".py")]
    actual = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py"))
    assert sorted(set(listed)) == sorted(listed), "a module is listed twice"
    assert not sorted(set(actual) - set(listed)), "modules missing from the layout"
    assert not sorted(set(listed) - set(actual)), "the layout lists modules that are gone"
    assert all(line for _, line in entries), "every entry says what it is"


def test_the_root_modules_are_listed_from_the_bottom_up() -> None:
    order = [path[:-3] for path, _ in layout_lines() if "/" not in path and path.endswith(".py")]
    order.remove("__init__")
    for i, name in enumerate(order):
        tree = ast.parse((SRC / f"{name}.py").read_text(encoding="utf-8"))
        imported = {
            node.module.split(".")[1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("costwarden.")
        }
        later = sorted(imported & set(order[i + 1 :]))
        assert not later, f"{name} imports {later}, listed below it"


def test_the_tree_reader_sees_folders_and_depth() -> None:
    # The reader must place nested entries under their folder, or the test above proves nothing.
    paths = dict(layout_lines())
    assert "ledger/sqlite.py" in paths and "clients/tracked.py" in paths
    assert "manager.py" in paths and "sqlite.py" not in paths
