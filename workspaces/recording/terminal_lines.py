"""Turn terminado WebSocket traffic (JupyterLab terminals) into command lines with their output.

Frames are JSON lists: ``["stdin", text]`` from the browser (a keystroke, or a paste, per
message), ``["stdout", text]`` from the shell, plus ``["setup", {}]``, ``["set_size", rows, cols,
…]`` and ``["disconnect", …]``, which are ignored.

``TerminalTracker`` replays the keystrokes into a line editor (printable text, backspace, Delete,
Ctrl-U/K/W, Ctrl-A/E, left/right/Home/End and word moves, Ctrl-C, bracketed paste). When history
recall, Tab completion, reverse search or any key it does not model (Alt-T, Ctrl-T, ...) made
the typed keys an unreliable record, the line is taken from the shell's echo instead. Enter
starts a command; its output (ANSI/OSC-free, bounded, head and tail with a marker) is collected
until the next command starts, ``flush()`` is called, or ``poll()`` finds the terminal quiet for
``quiet_s`` — then one ``terminal.command`` is emitted. Output that arrives after a command was
emitted by ``poll()`` is reported later as ``terminal.output``. Full-screen programs (the
alternate screen: vim, less, top) are not read as commands; a prompt ends full-screen mode.

Shell integration (``shell_marks``): before each prompt the shell prints a prompt mark and the
line it last added to its history. A command whose keys and shell agree is verified; when they
disagree the shell's line is kept (``source: "shell"``, ``keys_differ``, the keys' reading in
``keys_line``); a line the shell ran
that the keys did not show (typed while the tracker thought a full-screen program ran) becomes a
command of its own (``source: "shell"``, ``keys_missing``); a command the shell did not report
(no integration, history off) is flagged ``unverified``. The shell's marks are forgeable hints;
the terminal's cast is the evidence.

Forged reports: any program can print one (a fake "the shell ran ``pytest``" for a line typed
into the program, say). bash's history numbers only go up, and the shell's own report comes at
the next prompt all the same, so a forgery shows as a report that contradicts an earlier one (a
number below the highest seen, or a seen number with another line; ``history -c`` and
``history -d`` in the terminal read as one too). From then on this
connection's reports verify, rewrite and add nothing: every command is flagged
``reports_conflict`` (and ``unverified``); a command not yet emitted that a contradicted report
verified or rewrote gets its keys' line back and the flag; and the contradicting report itself
is recorded as a flagged command (``source: "shell"``; the first ``MAX_CONFLICTS``), so that
a forged confirmation already emitted is followed by the evidence against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from common.clock import iso, now
from workspaces.excerpt import HeadTail, clean_terminal
from workspaces.recording import events
from workspaces.recording.events import Observation
from workspaces.recording.shell_marks import PARTIAL, PROMPT_MARK, Report, find_marks

__all__ = ["TerminalTracker", "parse_terminal_frame"]

_KEYS = re.compile(r"\x1b\[[0-?]*[\x20-/]*[@-~]|\x1bO.|\x1b[\s\S]|[\x00-\x1f\x7f]"
                   r"|[^\x00-\x1f\x7f\x1b]+")
_INCOMPLETE = re.compile(r"\x1b(?:\[[0-?]*[\x20-/]*|O)?$")
_SCREEN = re.compile(r"\x1b\[([0-?]*)[\x20-/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                     r"|\x1b[PX^_][\s\S]*?(?:\x1b\\|\x07|$)|\x1b[\x20-/]*[0-~]?"
                     r"|[\x00-\x1f\x7f]|[^\x00-\x1f\x7f\x1b]+")
MAX_AWAITING = 50
MAX_HISTORY_SEEN = 500
MAX_CONFLICTS = 10
"""Contradicting reports recorded as commands, at most, per connection (a program can print
any number of them)."""
_ALT_ON = ("\x1b[?1049h", "\x1b[?1047h", "\x1b[?47h")
_ALT_OFF = ("\x1b[?1049l", "\x1b[?1047l", "\x1b[?47l")
_LEFT, _RIGHT = ("\x1b[D", "\x1bOD", "\x02"), ("\x1b[C", "\x1bOC", "\x06")
_HOME = ("\x1b[H", "\x1bOH", "\x1b[1~", "\x1b[7~", "\x01")
_END = ("\x1b[F", "\x1bOF", "\x1b[4~", "\x1b[8~", "\x05")
_WORD_LEFT = ("\x1b[1;5D", "\x1b[1;3D", "\x1bb")
_WORD_RIGHT = ("\x1b[1;5C", "\x1b[1;3C", "\x1bf")
# Keys after which the shell, not the keystrokes, knows what the line holds.
# Keys that leave the line as it was: clear screen, focus in/out.
_HARMLESS = ("\x0c", "\x1b[I", "\x1b[O")
_RECALL = ("\x1b[A", "\x1b[B", "\x1bOA", "\x1bOB", "\x10", "\x0e", "\t", "\x12", "\x19",
           "\x1b.", "\x1b_", "\x1b[5~", "\x1b[6~")


def parse_terminal_frame(data: str | bytes) -> tuple[str, Any] | None:
    """``(type, first argument)`` of a terminado frame, or None."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        return None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        return None
    return msg[0], (msg[1] if len(msg) > 1 else None)


class _LineEditor:
    """What readline would hold, rebuilt from keystrokes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chars: list[str] = []
        self.cursor = 0
        self.uncertain = False
        self.truncated = False
        self.touched = False

    def clear(self) -> None:
        self.chars, self.cursor = [], 0
        self.uncertain = self.truncated = self.touched = False

    def text(self) -> str:
        return "".join(self.chars)

    def insert(self, text: str) -> None:
        room = self.limit - len(self.chars)
        if len(text) > room:
            self.truncated = True
            text = text[:max(room, 0)]
        self.chars[self.cursor:self.cursor] = list(text)
        self.cursor += len(text)

    def key(self, key: str) -> None:
        """Apply one editing key (anything that is not text, Enter or Ctrl-C)."""
        chars, cur = self.chars, self.cursor
        if key in ("\x7f", "\x08"):
            if cur:
                del chars[cur - 1]
                self.cursor -= 1
        elif key in ("\x1b[3~", "\x04"):
            if cur < len(chars):
                del chars[cur]
        elif key in _LEFT:
            self.cursor = max(0, cur - 1)
        elif key in _RIGHT:
            self.cursor = min(len(chars), cur + 1)
        elif key in _HOME:
            self.cursor = 0
        elif key in _END:
            self.cursor = len(chars)
        elif key == "\x15":
            del chars[:cur]
            self.cursor = 0
        elif key == "\x0b":
            del chars[cur:]
        elif key in ("\x17", "\x1b\x7f", "\x1b\x08"):
            start = self._word_start(cur)
            del chars[start:cur]
            self.cursor = start
        elif key in _WORD_LEFT:
            self.cursor = self._word_start(cur)
        elif key in _WORD_RIGHT:
            end = cur
            while end < len(chars) and chars[end] == " ":
                end += 1
            while end < len(chars) and chars[end] != " ":
                end += 1
            self.cursor = end
        elif key not in _HARMLESS:  # history recall, completion, or a key not modelled here
            self.uncertain = True

    def _word_start(self, cur: int) -> int:
        start = cur
        while start and self.chars[start - 1] == " ":
            start -= 1
        while start and self.chars[start - 1] != " ":
            start -= 1
        return start


class _Screen:
    """The terminal's current output line (enough to read a shell's echo of the command)."""

    def __init__(self) -> None:
        self.cells: list[str] = []
        self.col = 0

    def text(self) -> str:
        return "".join(self.cells).rstrip()

    def feed(self, text: str) -> str | None:
        """Apply output; returns the line that a newline completed, if any (then stops)."""
        for match in _SCREEN.finditer(text):
            piece = match.group()
            final = match.group(2)
            if final is not None:
                self._csi(match.group(1), final)
            elif piece == "\n":
                done = self.text()
                self.cells, self.col = [], 0
                return done
            elif piece == "\r":
                self.col = 0
            elif piece == "\x08":
                self.col = max(0, self.col - 1)
            elif piece[0] != "\x1b" and not (len(piece) == 1 and (piece < " " or piece == "\x7f")):
                self._write(piece)
        return None

    def feed_tail(self, text: str, keep: int = 8192) -> None:
        """Apply output when only the state of the last line matters."""
        cut = text.rfind("\n")
        if cut >= 0:
            self.cells, self.col = [], 0
            text = text[cut + 1:]
        self.feed(text[-keep:])

    def _write(self, text: str) -> None:
        if self.col > 4096:
            return
        end = self.col + len(text)
        if len(self.cells) < self.col:
            self.cells.extend(" " * (self.col - len(self.cells)))
        self.cells[self.col:end] = list(text)
        self.col = end

    def _csi(self, params: str, final: str) -> None:
        if params.startswith("?"):
            return
        first = params.split(";")[0]
        n = int(first) if first.isdigit() else 0
        if final == "K":
            if n == 0:
                del self.cells[self.col:]
            elif n == 1:
                self.cells[:self.col] = [" "] * min(self.col, len(self.cells))
            else:
                self.cells = []
        elif final == "C":
            self.col += max(n, 1)
        elif final == "D":
            self.col = max(0, self.col - max(n, 1))
        elif final == "G":
            self.col = max(0, n - 1)
        elif final == "P":
            del self.cells[self.col:self.col + max(n, 1)]
        elif final == "@":
            self.cells[self.col:self.col] = [" "] * max(n, 1)


@dataclass
class _Command:
    line: str
    entered_at: datetime
    output: HeadTail
    uncertain: bool
    truncated: bool
    prompt_col: int | None
    last_output_at: datetime
    echo_pending: bool = True
    source: str = "keys"
    interrupted: bool = False
    full_screen: bool = False
    emitted: bool = False
    typing: bool = False
    late: HeadTail | None = None
    checked: bool = False
    """The shell reported at a prompt after it (see ``_report``)."""
    keys_differ: bool = False
    keys_line: str = ""
    """What the keys (or echo) said, when the shell said otherwise."""
    keys_missing: bool = False
    verified: bool = False
    report_n: int | None = None
    """The history number of the report that verified or rewrote it."""
    conflict: bool = False


class TerminalTracker:
    """Follows one terminal WebSocket connection (see the module doc)."""

    def __init__(self, *, terminal: str = "", quiet_s: float = 2.0, output_chars: int = 2000,
                 line_chars: int = 4000,
                 clock: Callable[[], datetime] = now) -> None:
        self.terminal = terminal
        self.quiet_s = quiet_s
        self._output_chars = output_chars
        self._clock = clock
        self._editor = _LineEditor(line_chars)
        self._screen = _Screen()
        self._prompt_col: int | None = None
        self._partial = ""
        self._paste = False
        self._last_cr = False
        self._alt = False
        self._current: _Command | None = None
        self._marks_tail = ""
        self._shell_seen = False
        self._last_hist: int | None = None
        self._max_hist: int | None = None
        self._hist_lines: dict[int, str] = {}
        """number → line, as reported (the last ``MAX_HISTORY_SEEN``)."""
        self._distrust = False
        """The shell's reports contradicted each other (a program printed fake ones)."""
        self._conflicts = 0
        self._typed = False
        """Keys came in since the shell's last report."""
        self.verify_wait_s = 10.0
        self._awaiting: list[_Command] = []
        self._alt_lines: list[list[Any]] = []
        """[line, reports since] typed while full screen (``_alt_key``)."""
        """Commands that ended before the shell reported them (typed ahead), oldest first."""

    def feed(self, direction: Literal["in", "out"], data: str | bytes,
             at: datetime | None = None) -> list[Observation]:
        when = at or self._clock()
        msg = parse_terminal_frame(data)
        if msg is None or not isinstance(msg[1], str):
            return []
        kind, text = msg
        if direction == "in" and kind == "stdin":
            return self._stdin(text, when)
        if direction == "out" and kind == "stdout":
            return self._stdout(text, when)
        return []

    def poll(self, at: datetime | None = None) -> list[Observation]:
        """Emit the running command if the terminal has been quiet for ``quiet_s`` (and
        commands whose shell report is overdue)."""
        when = at or self._clock()
        out: list[Observation] = []
        while self._awaiting and (when - self._awaiting[0].last_output_at).total_seconds() \
                >= self.verify_wait_s:
            out.append(self._command(self._awaiting.pop(0), when))
        cur = self._current
        if cur is None or cur.emitted:
            return out
        wait = self.quiet_s if cur.checked or not self._shell_seen else \
            max(self.quiet_s, self.verify_wait_s)
        if (when - cur.last_output_at).total_seconds() < wait:
            return out
        cur.emitted = True
        cur.late = HeadTail(self._output_chars)
        return [*out, self._command(cur, when)]

    def flush(self, at: datetime | None = None) -> list[Observation]:
        """Emit whatever is pending (at the end of a session or connection)."""
        when = at or self._clock()
        out = [self._command(cur, when) for cur in self._awaiting]
        self._awaiting.clear()
        return out + self._finish_current(when, final=True)

    # -- input ------------------------------------------------------------------------------

    def _stdin(self, text: str, at: datetime) -> list[Observation]:
        out: list[Observation] = []
        text = self._partial + text
        self._partial = ""
        incomplete = _INCOMPLETE.search(text)
        if incomplete and incomplete.start() < len(text):
            self._partial = incomplete.group()
            text = text[:incomplete.start()]
        editor = self._editor
        if text:
            self._typed = True
        for match in _KEYS.finditer(text):
            key = match.group()
            was_cr, self._last_cr = self._last_cr, key == "\r"
            if self._alt:  # a full-screen program reads them, or is it a shell? (``_report``)
                self._alt_key(key)
                continue
            if key == "\x1b[200~":
                self._paste = True
                continue
            if key == "\x1b[201~":
                self._paste = False
                continue
            if key in ("\r", "\n"):
                if self._paste:
                    self._first_key()
                    editor.insert("\n")
                elif not (key == "\n" and was_cr):
                    out += self._enter(at)
                continue
            if key == "\x03":
                if not editor.chars and self._current is not None:
                    self._current.interrupted = True
                editor.clear()
                self._prompt_col = None
                continue
            self._first_key()
            if key[0] in "\x1b\x7f" or len(key) == 1 and key < " ":
                editor.touched = True
                editor.key(key)
            else:
                editor.insert(key)
        return out

    def _alt_key(self, key: str) -> None:
        """Keys while full screen: lines kept aside until the shell says it ran one."""
        editor = self._editor
        if key in ("\r", "\n"):
            if editor.chars:
                self._alt_lines.append([editor.text(), 0])
                del self._alt_lines[:-MAX_AWAITING]
            editor.clear()
        elif key[0] in "\x1b\x7f" or len(key) == 1 and key < " ":
            editor.key(key)
        else:
            editor.insert(key)

    def _first_key(self) -> None:
        if not self._editor.touched and not self._editor.chars:
            self._prompt_col = self._screen.col
            if self._current is not None:
                self._current.typing = True  # what follows is the echo of the next line
        self._editor.touched = True

    def _enter(self, at: datetime) -> list[Observation]:
        editor = self._editor
        line, uncertain = editor.text(), editor.uncertain
        if not line.strip() and not uncertain:
            editor.clear()
            self._prompt_col = None
            return []
        out = self._finish_current(at)
        self._current = _Command(line, at, HeadTail(self._output_chars), uncertain,
                                 editor.truncated, self._prompt_col, at)
        editor.clear()
        self._prompt_col = None
        return out

    # -- output -----------------------------------------------------------------------------

    def _stdout(self, text: str, at: datetime) -> list[Observation]:
        if any(seq in text for seq in _ALT_ON + _ALT_OFF + (PROMPT_MARK,)):
            self._alt_switch(text)
        self._output(text, at)
        found: list[Observation] = []
        scan = self._marks_tail + text
        self._marks_tail = ""
        if "\x1b]" in scan:
            for _, report in find_marks(scan):
                if report is not None:
                    found += self._report(report, at)
            partial = PARTIAL.search(scan[-70_000:])  # a mark cut by the frame's end
            if partial:
                self._marks_tail = partial.group()
        return found

    def _output(self, text: str, at: datetime) -> None:
        cur = self._current
        if cur is not None and cur.echo_pending and not self._alt:
            newline = text.find("\n")
            head, text = (text, "") if newline < 0 else (text[:newline + 1], text[newline + 1:])
            echo = self._screen.feed(head[-8192:])
            if echo is not None:
                cur.echo_pending = False
                if cur.uncertain and echo.strip():
                    start = cur.prompt_col or 0
                    cur.line = echo[start:] if len(echo) > start else echo
                    cur.source = "echo"
        if cur is not None:
            cur.last_output_at = at
            if self._alt:
                cur.full_screen = True
            target = cur.late if cur.emitted else cur.output
            if target is not None and text and not self._alt and not cur.typing:
                target.add(text)
        if text:
            self._screen.feed_tail(text)

    def _alt_switch(self, text: str) -> None:
        last_on = max(text.rfind(seq) for seq in _ALT_ON)
        last_off = max(text.rfind(seq) for seq in (*_ALT_OFF, PROMPT_MARK))
        if last_on < 0 and not self._alt:
            return
        alt = last_on > last_off
        if alt != self._alt:
            self._alt = alt
            # Into full screen, keys typed ahead of the switch go on into the line kept aside
            # (the shell may read them all, ``_alt_key``). Out of it, what the keys held was the
            # program's when it switched back itself; when only a prompt mark ended it (a
            # printed switch), they were typed ahead into the shell's next line.
            if not alt and any(seq in text for seq in _ALT_OFF):
                self._editor.clear()
            self._prompt_col = None
            if self._current is not None:
                self._current.echo_pending = False
                self._current.full_screen = True

    # -- shell integration ------------------------------------------------------------------

    def _report(self, report: Report, at: datetime) -> list[Observation]:
        """The shell's last history entry, printed before a prompt (``shell_marks``)."""
        first = not self._shell_seen
        self._shell_seen = True
        new = report.number is not None and report.number != self._last_hist
        if report.number is not None:
            self._last_hist = report.number
        typed, self._typed = self._typed, False
        cur = self._current
        conflict = self._contradicts(report)
        if first:  # where the history stood when this connection came (the replay included)
            return []
        if conflict:
            return self._conflict(report, at)
        if self._distrust:  # bookkeeping only: reports verify, rewrite and add nothing now
            target = self._awaiting[0] if self._awaiting else cur
            if target is not None and not target.checked:
                if self._awaiting:
                    self._awaiting.pop(0)
                target.checked = True
                return [self._command(target, at)] if target is not cur else []
            return []
        # reports come in the order the lines ran: the oldest command waiting for one first
        # (lines typed ahead, before the previous prompt), else the current one
        target = self._awaiting[0] if self._awaiting else cur
        if target is not None and target.checked:
            target = None
        held = self._alt_lines
        for item in held:
            item[1] += 1
        self._alt_lines = [item for item in held if item[1] <= 3]
        if new and not (target is not None and not target.emitted
                        and _same_line(clean_terminal(target.line), report.line)):
            for i, (line, _) in enumerate(held):
                if _same_line(clean_terminal(line), report.line):  # typed while full screen
                    self._alt_lines = held[i + 1:]
                    ran = _Command(report.line, at, HeadTail(self._output_chars), False, False,
                                   None, at, echo_pending=False, source="shell", checked=True,
                                   keys_missing=True, verified=True)
                    # the command before it, already reported, is over: recorded first
                    done = self._finish_current(at) if cur is not None and cur.checked else []
                    return [*done, self._command(ran, at)]
        if target is not None:
            if self._awaiting:
                self._awaiting.pop(0)
            target.checked = True
            if not target.emitted and new:
                target.report_n = report.number
                if _same_line(clean_terminal(target.line), report.line):
                    target.verified = True
                else:
                    target.keys_line = clean_terminal(target.line)
                    target.line, target.source, target.keys_differ = report.line, "shell", True
                    target.echo_pending = False
            return [self._command(target, at)] if target is not cur else []
        if not new or not typed:
            return []
        out = self._finish_current(at)
        self._current = _Command(report.line, at, HeadTail(self._output_chars), False, False,
                                 None, at, echo_pending=False, source="shell", checked=True,
                                 keys_missing=True, verified=True)
        return out

    def _contradicts(self, report: Report) -> bool:
        """Whether ``report`` contradicts the reports before it (and note it as seen)."""
        number = report.number
        if number is None:
            return False
        seen = self._hist_lines.get(number)
        below = self._max_hist is not None and number < self._max_hist
        found = below or (seen is not None and not _same_line(seen, report.line))
        self._hist_lines[number] = report.line
        if len(self._hist_lines) > MAX_HISTORY_SEEN:
            del self._hist_lines[min(self._hist_lines)]
        self._max_hist = number if self._max_hist is None else max(self._max_hist, number)
        return found

    def _conflict(self, report: Report, at: datetime) -> list[Observation]:
        """A report contradicted an earlier one: distrust this connection's reports."""
        self._distrust = True
        pending = [*self._awaiting, *([self._current] if self._current else [])]
        for cmd in pending:
            if cmd.emitted:
                continue
            cmd.conflict = True
            if cmd.report_n is not None and report.number is not None and \
                    cmd.report_n >= report.number:
                cmd.verified = False
                if cmd.keys_differ:  # rewritten by a report that is now in doubt
                    cmd.line, cmd.source, cmd.keys_differ = cmd.keys_line, "keys", False
        self._conflicts += 1
        if self._conflicts > MAX_CONFLICTS:
            return []
        said = _Command(report.line, at, HeadTail(self._output_chars), False, False, None, at,
                        echo_pending=False, source="shell", checked=True, emitted=True,
                        conflict=True)
        return [self._command(said, at)]

    # -- emission ---------------------------------------------------------------------------

    def _finish_current(self, at: datetime, *, final: bool = False) -> list[Observation]:
        cur, self._current = self._current, None
        if cur is None:
            return []
        if not cur.emitted:
            if self._shell_seen and not cur.checked and not final:
                self._awaiting.append(cur)  # emitted once the shell reports it (``_report``)
                if len(self._awaiting) > MAX_AWAITING:
                    return [self._command(self._awaiting.pop(0), at)]
                return []
            return [self._command(cur, at)]
        if cur.late:
            payload = {"terminal": self.terminal, "line": clean_terminal(cur.line),
                       "output": cur.late.render(), "output_chars": cur.late.total}
            return [Observation(events.TERMINAL_OUTPUT, payload, at)]
        return []

    def _command(self, cur: _Command, at: datetime) -> Observation:
        payload: dict[str, Any] = {
            "terminal": self.terminal,
            "line": clean_terminal(cur.line),
            "entered_at": iso(cur.entered_at),
            "duration_ms": max(0, round((cur.last_output_at - cur.entered_at).total_seconds()
                                        * 1000)),
            "output": cur.output.render(),
            "output_chars": cur.output.total,
            "source": cur.source,
        }
        if cur.uncertain and cur.source == "keys":
            payload["approximate"] = True
        if cur.truncated:
            payload["line_truncated"] = True
        if cur.interrupted:
            payload["interrupted"] = True
        if cur.full_screen:
            payload["full_screen"] = True
        if cur.keys_differ:
            payload["keys_differ"] = True
            payload["keys_line"] = cur.keys_line
        if cur.keys_missing:
            payload["keys_missing"] = True
        if cur.conflict or self._distrust:
            payload["reports_conflict"] = True
        if not cur.verified and not cur.keys_differ:
            payload["unverified"] = True
        return Observation(events.TERMINAL_COMMAND, payload, at)


def _same_line(keys: str, shell: str) -> bool:
    """The same command, whitespace and ``;``-joined lines of a multi-line paste aside."""
    def norm(text: str) -> str:
        return re.sub(r"[\s;]+", " ", text).strip()
    return norm(keys) == norm(shell)
