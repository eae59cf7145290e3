"""SVG charts: well-formed, escaped, no scripts, points and bars where the geometry says."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: N817

from scoring.charts import BOTTOM, HEIGHT, LEFT, PLOT_H, PLOT_W, TOP, WIDTH, Bar, bars, scatter

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & co'


def _parse(svg: str) -> ET.Element:
    # Our own output; ElementTree resolves no external entities.
    return ET.fromstring(svg)  # noqa: S314


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_geometry_constants_add_up() -> None:
    assert LEFT + PLOT_W + 20 == WIDTH
    assert TOP + PLOT_H + BOTTOM == HEIGHT


def test_scatter_points_labels_and_n() -> None:
    svg = scatter(
        [(2.5, 3.0), (1.0, 1.0), (4.0, 5.0)],
        title=HOSTILE, x_label="level <mean>", y_label="performance & more",
        x_range=(1.0, 4.0), y_range=(1.0, 5.0),
    )
    root = _parse(svg)
    assert root.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
    points = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "point"]
    assert len(points) == 3
    # (2.5, 3.0): halfway along x in 1..4, halfway up y in 1..5
    assert float(points[0].get("cx", "")) == LEFT + PLOT_W / 2
    assert float(points[0].get("cy", "")) == TOP + PLOT_H / 2
    # (1, 1) sits on the origin; (4, 5) in the top-right corner
    assert (float(points[1].get("cx", "")), float(points[1].get("cy", ""))) == (LEFT, TOP + PLOT_H)
    assert (float(points[2].get("cx", "")), float(points[2].get("cy", ""))) == (LEFT + PLOT_W, TOP)
    texts = _texts(root)
    assert HOSTILE in texts
    assert "level <mean>" in texts and "performance & more" in texts
    assert "n = 3" in texts
    assert root.find(f"{SVG}title") is not None
    assert not list(root.iter(f"{SVG}script"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_scatter_without_points_still_shows_n() -> None:
    root = _parse(
        scatter([], title="t", x_label="x", y_label="y", x_range=(1, 4), y_range=(1, 5))
    )
    assert not list(root.iter(f"{SVG}circle"))
    assert "n = 0" in _texts(root)


def test_bars_with_whiskers_and_reference_line() -> None:
    svg = bars(
        [Bar("hired <all>", 0.75, 0.5, 0.9, note="n = 12"), Bar("x", None, note="n = 2")],
        title="Retention", y_label="rate", reference=0.5, reference_label="baseline 50%",
    )
    root = _parse(svg)
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(rects) == 1
    base = TOP + PLOT_H
    # value 0.75 of a 0..1 axis: the bar rises 0.75 * PLOT_H from the base
    assert float(rects[0].get("height", "")) == 0.75 * PLOT_H
    assert float(rects[0].get("y", "")) == base - 0.75 * PLOT_H
    (whisker,) = [p for p in root.iter(f"{SVG}path") if p.get("class") == "whisker"]
    assert f"{base - 0.5 * PLOT_H:.1f}" in whisker.get("d", "")
    assert f"{base - 0.9 * PLOT_H:.1f}" in whisker.get("d", "")
    (line,) = [x for x in root.iter(f"{SVG}line") if x.get("class") == "reference"]
    assert float(line.get("y1", "")) == base - 0.5 * PLOT_H
    texts = _texts(root)
    assert "hired <all>" in texts
    assert {"n = 12", "not enough data (n = 2)", "- - baseline 50%"} <= set(texts)
    assert "<all>" not in svg


def test_bars_without_reference() -> None:
    root = _parse(bars([Bar("a", 0.2)], title="t", y_label="y"))
    assert not [x for x in root.iter(f"{SVG}line") if x.get("class") == "reference"]
    assert not list(root.iter(f"{SVG}path"))


def test_bar_notes_sit_above_the_whisker_and_long_labels_slant() -> None:
    items = [Bar(f"dimension-{i}", 0.5, 0.25, 0.75, note="n = 9") for i in range(6)]
    root = _parse(bars(items, title="t", y_label="alpha"))
    # 0.75 of a 0..1 axis is 0.75 * PLOT_H above the base; the note sits 4 units higher
    notes = [t for t in root.iter(f"{SVG}text") if t.text == "n = 9"]
    assert len(notes) == 6
    assert {float(t.get("y", "")) for t in notes} == {TOP + PLOT_H - 0.75 * PLOT_H - 6}
    # 6 slots of PLOT_W / 6 units are too narrow for 11 characters: the labels slant
    labels = [t for t in root.iter(f"{SVG}text") if (t.text or "").startswith("dimension-")]
    assert all("rotate(-35" in t.get("transform", "") for t in labels)
    short = _parse(bars([Bar("a", 0.5)], title="t", y_label="y"))
    (label,) = [t for t in short.iter(f"{SVG}text") if t.text == "a"]
    assert label.get("transform") is None


def test_negative_bars_hang_from_the_zero_line() -> None:
    root = _parse(bars([Bar("a", -0.5, -0.75, 0.25)], title="t", y_label="alpha",
                       y_range=(-1.0, 1.0)))
    # on a -1..1 axis zero is halfway up; -0.5 reaches a quarter of PLOT_H below it
    zero = TOP + PLOT_H / 2
    (line,) = [x for x in root.iter(f"{SVG}line") if x.get("class") == "zero"]
    assert float(line.get("y1", "")) == zero
    (rect,) = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert float(rect.get("y", "")) == zero
    assert float(rect.get("height", "")) == PLOT_H / 4
