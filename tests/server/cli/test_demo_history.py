"""The demo's past interviews: made once, sealed like real ones, and enough for the
calibration and validity reports to show figures (computed by the same code as real data)."""

from __future__ import annotations

from pathlib import Path

from common import audit
from scoring import analytics, scorecards
from server.cli.demo_history import PAST_SESSIONS, ensure_demo_history
from server.db import open_migrated
from server.people import accounts as people
from server.settings import Settings, prepare_data_dir
from tests.fixture_tasks import publish_fake_task


def test_past_interviews_feed_the_reports(tmp_path: Path) -> None:
    settings = prepare_data_dir(Settings(data_dir=tmp_path / "data"))
    publish_fake_task(settings, "pipe-task", kind="pipeline-bug")
    publish_fake_task(settings, "eval-task", kind="eval-script")
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            panel = [people.add_user(db, audit.CLI, f"i{n}@example.com", "interviewer", "x",
                                     f"Interviewer {n}") for n in (1, 2)]
            assert ensure_demo_history(db, panel, settings.cookie_secret.reveal()) == PAST_SESSIONS
            assert ensure_demo_history(db, panel, settings.cookie_secret.reveal()) == 0  # once
        sessions = db.execute("SELECT id FROM interview_sessions WHERE state = 'ended'"
                              ).fetchall()
        assert len(sessions) == PAST_SESSIONS
        assert all(len(scorecards.submitted_cards(db, sid)) == 2 for (sid,) in sessions)
        calibration = analytics.calibration(db, min_sessions=5)
        assert calibration.by_dimension and all(a.agreement.enough
                                                for a in calibration.by_dimension)
        offsets = {(o.interviewer, o.dimension): o.offset for o in calibration.offsets}
        # the second demo interviewer was made to score lower: it shows on every dimension
        assert all(offsets[("Interviewer 2", d)] < 0
                   for (name, d) in offsets if name == "Interviewer 2")
        validity = analytics.validity(db, min_n=10)
        overall = [c for c in validity.correlations if c.score == "overall"]
        assert overall and all(c.correlation.enough for c in overall)
        assert validity.retention.enough and validity.retention.baseline == 0.7
    finally:
        db.conn.close()
