"""Shell integration of workspace terminals: the rc file bash starts with, and its marks.

Terminals run ``/bin/bash --rcfile /etc/pairlab/bashrc`` (root-owned, read-only; written by
``workspaces.jupyter_config.write_config_dir``). It sources the usual ``/etc/bash.bashrc`` and
``~/.bashrc``, then puts a hook first in ``PROMPT_COMMAND`` that prints, before each prompt,

- ``ESC ] 133 ; A BEL``: a prompt starts (the shell is reading a line: no full-screen program
  runs), the FinalTerm/iTerm2 "prompt" mark that terminals ignore when they do not know it;
- ``ESC ] 6973 ; <base64> BEL``: ``history 1``, that is the number and the text of the line
  bash last added to its history, the line it actually ran.

The recording (``terminal_lines``) trusts these as hints only: anything in the terminal can print
them. The cast (``casts``) is the evidence.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

PROMPT_MARK = "\x1b]133;A\x07"
_REPORT = re.compile(r"\x1b\]6973;([A-Za-z0-9+/=]{0,65536})(?:\x07|\x1b\\)")
_MARK = re.compile(r"\x1b\]133;A(?:\x07|\x1b\\)")
_HISTORY_LINE = re.compile(r"\s*([0-9]+)\*?\s+(.*)", re.DOTALL)
PARTIAL = re.compile(r"\x1b(?:\](?:1(?:3(?:3(?:;A?)?)?)?|6(?:9(?:7(?:3(?:;[A-Za-z0-9+/=]*)?)?)?)?"
                     r")?)?$")
"""The end of an output chunk that may be the start of a mark cut by the frame boundary."""

BASHRC = r"""# pairlab: the shell of workspace terminals (read-only). The usual rc files first.
if [ -r /etc/bash.bashrc ]; then . /etc/bash.bashrc; fi
if [ -r ~/.bashrc ]; then . ~/.bashrc; fi
# Every line run goes into the history, and before each prompt the shell says which line it
# ran (pairlab records it beside the keys that were typed).
HISTCONTROL=
HISTIGNORE=
__pairlab_prompt() {
  local status=$? entry
  entry=$(HISTTIMEFORMAT= builtin history 1)
  builtin printf '\e]133;A\a\e]6973;%s\a' "$(builtin printf '%s' "$entry" | base64 -w0)"
  return $status
}
PROMPT_COMMAND="__pairlab_prompt${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
"""


@dataclass(frozen=True)
class Report:
    """What bash said at a prompt: its last history entry (number and line), if any."""

    number: int | None
    line: str


def find_marks(text: str) -> list[tuple[int, Report | None]]:
    """``(end offset, report)`` for each prompt mark (report None) and report in ``text``."""
    found: list[tuple[int, Report | None]] = [(m.end(), None) for m in _MARK.finditer(text)]
    for match in _REPORT.finditer(text):
        try:
            raw = base64.b64decode(match.group(1), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        entry = _HISTORY_LINE.fullmatch(raw.rstrip("\n"))
        report = Report(int(entry.group(1)), entry.group(2)) if entry else Report(None, "")
        found.append((match.end(), report))
    return sorted(found, key=lambda item: item[0])
