"""Calibration and validity read from a real migrated SQLite file, checked against hand sums.

The data (tests/scoring/analytics_data.py), current cards as (debugging, questions):

    task-a  S1  ann (3, 2)  bo (2, 2)            [ann's earlier (1, 1) is superseded]
            S2  ann (4, 3)  bo (3, 3)  cy (4, 4)
            S3  ann (2, 1)  cy (1, 1)
    task-b  S4  bo (1, 2)   cy (2, 2)
            S5  ann (4, 4)                       [one interviewer: no agreement, no offset]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest

from scoring import analytics
from server.db import open_migrated
from server.settings import Settings, prepare_data_dir
from tests.scoring.analytics_data import BASELINE, seed

Z = 1.959964


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded once for the module: the reports only read."""
    settings = prepare_data_dir(Settings(data_dir=tmp_path_factory.mktemp("analytics") / "data"))
    seed(settings)
    return settings.db_path


def _calibration(path: Path, min_sessions: int) -> analytics.Calibration:
    db = open_migrated(path)
    try:
        return analytics.calibration(db, min_sessions=min_sessions)
    finally:
        db.conn.close()


def _validity(path: Path, min_n: int) -> analytics.Validity:
    db = open_migrated(path)
    try:
        return analytics.validity(db, min_n=min_n)
    finally:
        db.conn.close()


def test_interviewer_offsets_by_hand(db_path: Path) -> None:
    # debugging:  S1 ann 3-2 = 1,   bo 2-3 = -1
    #             S2 ann 4-(3+4)/2 = .5, bo 3-(4+4)/2 = -1, cy 4-(4+3)/2 = .5
    #             S3 ann 2-1 = 1,   cy 1-2 = -1
    #             S4 bo 1-2 = -1,   cy 2-1 = 1
    # questions:  S1 ann 0, bo 0;  S2 ann 3-3.5 = -.5, bo -.5, cy 4-3 = 1;  S3 0, 0;  S4 0, 0
    expected = {
        ("ann", "debugging"): (1 + 0.5 + 1) / 3,
        ("ann", "questions"): (0 - 0.5 + 0) / 3,
        ("bo", "debugging"): (-1 - 1 - 1) / 3,
        ("bo", "questions"): (0 - 0.5 + 0) / 3,
        ("cy", "debugging"): (0.5 - 1 + 1) / 3,
        ("cy", "questions"): (1 + 0 + 0) / 3,
    }
    report = _calibration(db_path, 3)
    got = {(o.interviewer, o.dimension): o for o in report.offsets}
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].offset == pytest.approx(value)
        assert got[key].sessions == 3
        assert got[key].enough


def test_agreement_per_dimension_and_task_by_hand(db_path: Path) -> None:
    # debugging over S1-S4, coincidences (a unit of m raters adds 1/(m-1) per ordered pair):
    #   S1 o23 = o32 = 1;  S2 (4,3,4) o34 = o43 = 1, o44 = 1;  S3, S4 o12 = o21 = 2 in all
    #   n = (2, 3, 2, 2), total 9; delta_12 = (5 - 2.5)^2 = 6.25, delta_13 = (7 - 2)^2 = 25,
    #   delta_14 = (9 - 2)^2 = 49, delta_23 = (5 - 2.5)^2 = 6.25, delta_24 = (7 - 2.5)^2 = 20.25,
    #   delta_34 = (4 - 2)^2 = 4
    #   observed = 2*2*6.25 + 2*1*6.25 + 2*1*4 = 45.5
    #   expected = 2*(6*6.25 + 4*25 + 4*49 + 6*6.25 + 6*20.25 + 4*4) = 1017
    debugging = 1 - Fraction(8) * Fraction(91, 2) / 1017  # = 653/1017
    # questions over S1-S4: o11 = 2, o22 = 4, S2 (3,3,4) o33 = 1, o34 = o43 = 1
    #   n = (2, 4, 2, 1), total 9; delta_34 = (3 - 1.5)^2 = 2.25; observed = 2 * 2.25 = 4.5
    #   expected = 2*(8*9 + 4*36 + 2*56.25 + 8*9 + 4*20.25 + 2*2.25) = 972
    questions = 1 - Fraction(8) * Fraction(9, 2) / 972  # = 26/27
    # task-a debugging over S1-S3: o12 = o21 = 1, o23 = o32 = 1, o34 = o43 = 1, o44 = 1
    #   n = (1, 2, 2, 2), total 7; delta_12 = 2.25, delta_13 = 12.25, delta_14 = 30.25,
    #   delta_23 = 4, delta_24 = 16, delta_34 = 4; observed = 2*2.25 + 2*4 + 2*4 = 20.5
    #   expected = 2*(2*2.25 + 2*12.25 + 2*30.25 + 4*4 + 4*16 + 4*4) = 371
    task_a_debugging = 1 - Fraction(6) * Fraction(41, 2) / 371  # = 248/371
    report = _calibration(db_path, 3)
    by_dim = {d.dimension: d.agreement for d in report.by_dimension}
    assert by_dim["debugging"].alpha == pytest.approx(float(debugging))
    assert by_dim["questions"].alpha == pytest.approx(float(questions))
    assert by_dim["debugging"].sessions == by_dim["questions"].sessions == 4
    for a in by_dim.values():
        assert a.ci_low is not None and a.ci_high is not None and a.alpha is not None
        assert -1 <= a.ci_low <= a.alpha <= a.ci_high <= 1
    by_task = {(d.task_id, d.dimension): d.agreement for d in report.by_task}
    assert by_task[("task-a", "debugging")].alpha == pytest.approx(float(task_a_debugging))
    assert by_task[("task-a", "debugging")].sessions == 3
    # task-b: only S4 has two interviewers
    lone = by_task[("task-b", "questions")]
    assert (lone.alpha, lone.sessions, lone.enough) == (None, 1, False)
    assert lone.reason == "not enough data: 1 sessions rated by 2+ interviewers, 3 needed"


def test_calibration_below_the_minimum(db_path: Path) -> None:
    report = _calibration(db_path, 5)
    assert all(d.agreement.alpha is None for d in report.by_dimension + report.by_task)
    assert {d.agreement.reason for d in report.by_dimension} == {
        "not enough data: 4 sessions rated by 2+ interviewers, 5 needed"
    }
    assert all(o.offset is None and not o.enough for o in report.offsets)
    assert {o.reason for o in report.offsets} == {
        "not enough data: 3 sessions shared with other interviewers, 5 needed"
    }


def test_empty_database(settings: Settings) -> None:
    report = _calibration(settings.db_path, 5)
    assert (report.offsets, report.by_dimension, report.by_task) == ([], [], [])
    validity = _validity(settings.db_path, 10)
    assert validity.sessions_scored == 0
    assert validity.retention.n == 0 and validity.retention.rate is None


def _pearson(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxy = sum((x - mx) * (y - my) for x, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    return sxy / math.sqrt(sxx * syy)


def test_validity_by_hand(db_path: Path) -> None:
    # Panel means of the weighted score: S1 (2.5+2)/2 = 2.25, S2 (3.5+3+4)/3 = 3.5,
    # S3 (1.5+1)/2 = 1.25, S4 (1.5+2)/2 = 1.75, S5 4.0. Performance: S1 3, S2 4, S3 2, S5 5
    # (S4 was not hired). Sxy = 4.75, Sxx = 4.625, Syy = 5: r = 4.75 / sqrt(23.125).
    overall = [(1.25, 2.0), (2.25, 3.0), (3.5, 4.0), (4.0, 5.0)]
    # Debugging means: S1 2.5, S2 11/3, S3 1.5, S5 4.
    debugging = [(1.5, 2.0), (2.5, 3.0), (11 / 3, 4.0), (4.0, 5.0)]
    hired = [(1.25, 1.0), (1.75, 0.0), (2.25, 1.0), (3.5, 1.0), (4.0, 1.0)]
    # Employed at six months, among the hires only (S4 was not hired): S3 left.
    employed = [(1.25, 0.0), (2.25, 1.0), (3.5, 1.0), (4.0, 1.0)]
    report = _validity(db_path, 4)
    assert report.sessions_scored == 5
    got = {(c.score, c.outcome): c for c in report.correlations}
    assert set(got) == {("overall", "performance"), ("debugging", "performance"),
                        ("questions", "performance"), ("overall", "hired"),
                        ("overall", "employed_6m")}
    for key, points in [(("overall", "performance"), overall),
                        (("debugging", "performance"), debugging),
                        (("overall", "hired"), hired),
                        (("overall", "employed_6m"), employed)]:
        item = got[key]
        assert [v for p in item.points for v in p] == pytest.approx([v for p in points for v in p])
        r = _pearson(points)
        z, se = math.atanh(r), 1 / math.sqrt(len(points) - 3)
        assert item.correlation.n == len(points)
        assert item.correlation.r == pytest.approx(r)
        assert item.correlation.ci_low == pytest.approx(math.tanh(z - Z * se), abs=1e-6)
        assert item.correlation.ci_high == pytest.approx(math.tanh(z + Z * se), abs=1e-6)
    assert got[("overall", "performance")].correlation.r == pytest.approx(
        4.75 / math.sqrt(23.125)
    )


def test_retention_among_hires_by_hand(db_path: Path) -> None:
    # Hired with a six-month outcome: S1 yes, S2 yes, S3 no, S5 yes -> 3 of 4 (S4 not hired).
    p, n = 0.75, 4
    denominator = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denominator
    r = _validity(db_path, 4).retention
    assert (r.n, r.retained) == (4, 3)
    assert r.rate == pytest.approx(0.75)
    assert r.ci_low == pytest.approx(centre - half, abs=1e-6)
    assert r.ci_high == pytest.approx(centre + half, abs=1e-6)
    assert r.baseline == BASELINE
    assert r.difference == pytest.approx(0.75 - BASELINE)


def test_validity_below_the_minimum(db_path: Path) -> None:
    report = _validity(db_path, 10)
    for item in report.correlations:
        assert item.correlation.r is None
        assert item.correlation.reason == (
            f"not enough data: {item.correlation.n} pairs, 10 needed"
        )
    assert report.retention.rate is None
    assert report.retention.reason == (
        "not enough data: 4 hired candidates with a six-month outcome, 10 needed"
    )


def test_validity_without_outcomes_or_baseline(settings: Settings) -> None:
    seed(settings, outcomes=False, baseline=False)
    report = _validity(settings.db_path, 3)
    assert report.sessions_scored == 5
    assert all(c.correlation.n == 0 for c in report.correlations)
    assert report.retention.baseline is None
