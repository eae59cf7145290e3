"""What find_hints leaves out (generic, placeholder, code, declared, bots) and how it bounds
its list, over a folder of real files."""

from __future__ import annotations

from pathlib import Path

from tasks.hints import MAX_EXAMPLES, MAX_HINTS, find_hints

REPLACE = [("Quintcorp", "Acme")]
PEOPLE = [("Maya Okafor", "Jane Doe")]


def values(tree: Path, history: list[tuple[str, str]] | None = None) -> set[str]:
    report = find_hints(tree, REPLACE, PEOPLE, history=history or [], history_commits=5)
    return {f"{h.kind} {h.value}" for h in report.hints}


def test_generic_placeholder_code_and_declared_things_are_not_hinted(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "Mount /home/jovyan/work, /home/runner/.cache, /Users/username/x and /home/acme-ci/.\n"
        "Write to help [at] example [dot] com; look at example.com at noon; see setup dot py.\n"
        "Use threading.local in prose; the image is host1.example.internal; acme.com.\n"
        "Maya Okafor started it (declared: rewritten to Jane Doe by the anonymiser).\n")
    (tmp_path / "app.py").write_text("import threading\nstate = threading.local()\n"
                                     "x = self.cache.local\nname = cfg.db.internal\n")
    history = [("Maya Okafor", "maya@gmail.com"), ("maya-okafor", "maya@gmail.com"),
               ("Okafor.Maya", "mo@gmail.com"), ("dependabot[bot]", "x@users.noreply.github.com"),
               ("GitHub", "noreply@github.com"), ("Test Person", "test@example.com"),
               ("Ci Runner", "ci@pairlab.invalid"), ("Quintcorp Build", "build@quintcorp.com")]
    assert values(tmp_path, history) == set()


def test_what_is_left_is_hinted_once_with_a_few_places_and_a_count(tmp_path: Path) -> None:
    lines = "".join(f"cp /home/kwame/run{i}.log out/\n" for i in range(7))
    (tmp_path / "run.sh").write_text(lines)
    report = find_hints(tmp_path, REPLACE, PEOPLE)
    (hint,) = report.hints
    assert (hint.kind, hint.value, hint.count) == ("home-path", "/home/kwame", 7)
    assert hint.examples == tuple(f"run.sh:{n}" for n in range(1, MAX_EXAMPLES + 1))


def test_the_list_is_bounded_and_says_how_many_were_left_off(tmp_path: Path) -> None:
    users = [f"user{chr(97 + i // 26)}{chr(97 + i % 26)}x" for i in range(MAX_HINTS + 9)]
    (tmp_path / "paths.txt").write_text("".join(f"/home/{u}/data\n" for u in users))
    report = find_hints(tmp_path, REPLACE, PEOPLE)
    assert len(report.hints) == MAX_HINTS
    assert report.left_off == 9
    assert len({h.id for h in report.hints}) == MAX_HINTS
