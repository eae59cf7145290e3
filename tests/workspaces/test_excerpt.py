"""Bounded, inert excerpts of candidate output."""

from __future__ import annotations

import pytest

from workspaces.excerpt import HeadTail, clean_terminal, strip_ansi, truncate


@pytest.mark.parametrize(("raw", "clean"), [
    ("\x1b[1;31merror\x1b[0m", "error"),
    ("\x1b]0;title\x07prompt$ ", "prompt$ "),
    ("\x1b]8;;https://example.invalid\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x1bP+q544e\x1b\\after", "after"),
    ("a\x00b\x07c\x85d\x9b31mx", "abcdx"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("cut \x1b[3", "cut "),
    ("cut \x1b", "cut "),
    ("\x1b(Bplain\x1b=", "plain"),
])
def test_strip_ansi(raw: str, clean: str) -> None:
    assert strip_ansi(raw) == clean


def test_clean_terminal_applies_overwrites() -> None:
    assert clean_terminal("10%\r50%\r100%\r\ndone\r\n") == "100%\ndone\n"
    assert clean_terminal("long line\rshort") == "shortline"
    assert clean_terminal("abc\x08\x08X") == "aX"
    assert clean_terminal("\x1b[32mok\x1b[0m\r\n") == "ok\n"


def test_truncate_marks_what_was_cut() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 2) == "ab…[truncated 4 chars]"


def test_head_tail_keeps_both_ends_in_bounded_memory() -> None:
    excerpt = HeadTail(10)
    for i in range(10_000):
        excerpt.add(f"{i % 10}")
    assert excerpt.total == 10_000 and excerpt.dropped == 9_990
    assert excerpt.render() == "01234\n…[truncated 9990 chars]\n56789"
    small = HeadTail(100)
    small.add("\x1b[31mred")
    small.add("\x1b[0m done")
    assert small.render() == "red done" and small.dropped == 0 and bool(small)
    assert not HeadTail(5)
