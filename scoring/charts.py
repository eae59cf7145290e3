"""Server-side SVG charts for the reports: a scatter chart and a bar chart with a reference line.

Plain strings, a fixed viewBox, presentation attributes only (no scripts, no styles, nothing
fetched), and every piece of text XML-escaped, so the markup can be inlined in a page under a
strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 480, 320
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 50, 70
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
CHAR_W = 7  # rough width of a character at font-size 12
SLANT_COS, SLANT_SIN = 0.819, 0.574  # cos and sin of the 35° at which long labels slant


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` (None: drawn as "not enough data"), an optional interval and note."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def _t(text: str) -> str:
    return escape(text, quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _scale(value: float, lo: float, hi: float, size: float) -> float:
    span = hi - lo
    return 0.0 if span == 0 else (min(max(value, lo), hi) - lo) / span * size


def _text(x: float, y: float, text: str, *, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="12"{extra}>'
        f"{_t(text)}</text>"
    )


def _frame(title: str, body: list[str], *, left: float = 0.0, below: float = 0.0) -> str:
    """The chart's SVG, its canvas widened by ``left`` and lengthened by ``below`` (room for
    slanted labels that would otherwise be cut off at the edges)."""
    width, height = WIDTH + left, HEIGHT + below
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_n(-left) if left else 0} 0 '
        f'{_n(width) if left else WIDTH} {_n(height) if below else HEIGHT}" '
        f'width="{_n(width) if left else WIDTH}" height="{_n(height) if below else HEIGHT}" '
        f'role="img" aria-label="{_t(title)}">'
    )
    return "".join(
        [head, f"<title>{_t(title)}</title>", _text(WIDTH / 2, 18, title), *body, "</svg>"]
    )


def _axes(x_label: str, y_label: str) -> list[str]:
    x0, y0, mid_y = LEFT, TOP + PLOT_H, TOP + PLOT_H / 2
    return [
        f'<line class="axis" x1="{x0}" y1="{y0}" x2="{x0 + PLOT_W}" y2="{y0}" stroke="#333"/>',
        f'<line class="axis" x1="{x0}" y1="{TOP}" x2="{x0}" y2="{y0}" stroke="#333"/>',
        _text(LEFT + PLOT_W / 2, y0 + 36, x_label),
        _text(15, mid_y, y_label, extra=f' transform="rotate(-90 15 {_n(mid_y)})"'),
    ]


def _ticks(lo: float, hi: float, *, vertical: bool) -> list[str]:
    out = []
    for value in (lo, (lo + hi) / 2, hi):
        if vertical:
            y = TOP + PLOT_H - _scale(value, lo, hi, PLOT_H)
            out.append(_text(LEFT - 6, y + 4, f"{value:g}", anchor="end"))
        else:
            x = LEFT + _scale(value, lo, hi, PLOT_W)
            out.append(_text(x, TOP + PLOT_H + 16, f"{value:g}"))
    return out


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> str:
    """Points in the given ranges (values outside are drawn on the edge), with n above."""
    body = _axes(x_label, y_label)
    body += _ticks(*x_range, vertical=False) + _ticks(*y_range, vertical=True)
    for x, y in points:
        cx = LEFT + _scale(x, *x_range, PLOT_W)
        cy = TOP + PLOT_H - _scale(y, *y_range, PLOT_H)
        body.append(
            f'<circle class="point" cx="{_n(cx)}" cy="{_n(cy)}" r="4" '
            f'fill="#2b6cb0" fill-opacity="0.6"/>'
        )
    body.append(_text(LEFT, TOP - 12, f"n = {len(points)}", anchor="start"))
    return _frame(title, body)


def bars(
    items: Sequence[Bar],
    *,
    title: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """Vertical bars from 0 with interval whiskers, and a dashed reference line whose label
    sits above the plot, top right.

    Each bar's note (its n) sits above it; a bar without a value reads "not enough data",
    upright in its slot. Labels slant when they would not fit their slot.
    """
    lo, hi = y_range
    body = _axes("", y_label) + _ticks(lo, hi, vertical=True)
    slot = PLOT_W / max(len(items), 1)
    base = TOP + PLOT_H

    def y_of(value: float) -> float:
        return base - _scale(value, lo, hi, PLOT_H)

    zero = y_of(0.0)
    if lo < 0 < hi:
        body.append(f'<line class="zero" x1="{LEFT}" y1="{_n(zero)}" x2="{LEFT + PLOT_W}" '
                    f'y2="{_n(zero)}" stroke="#999"/>')
    slant = any(len(item.label) * CHAR_W > slot for item in items)
    left = below = 0.0
    if slant:  # a label at -35° reaches cos·w left of its bar's middle and sin·w down
        for i, item in enumerate(items):
            w = len(item.label) * CHAR_W
            left = max(left, SLANT_COS * w - (LEFT + slot * (i + 0.5)) + 4)
            below = max(below, 16 + SLANT_SIN * w + 8 - BOTTOM)
    for i, item in enumerate(items):
        mid = LEFT + slot * (i + 0.5)
        extra = f' transform="rotate(-35 {_n(mid)} {base + 16})"' if slant else ""
        body.append(_text(mid, base + 16, item.label, anchor="end" if slant else "middle",
                          extra=extra))
        if item.value is None:
            missing = f"not enough data ({item.note})" if item.note else "not enough data"
            body.append(_text(mid + 4, base - 6, missing, anchor="start",
                              extra=f' transform="rotate(-90 {_n(mid + 4)} {base - 6})"'))
            continue
        end = y_of(item.value)
        width = slot * 0.5
        body.append(
            f'<rect class="bar" x="{_n(mid - width / 2)}" y="{_n(min(end, zero))}" '
            f'width="{_n(width)}" height="{_n(abs(zero - end))}" fill="#2b6cb0"/>'
        )
        highest = min(end, zero)
        if item.low is not None and item.high is not None:
            y_lo, y_hi = y_of(item.low), y_of(item.high)
            highest = min(highest, y_hi)
            body.append(
                f'<path class="whisker" d="M{_n(mid)} {_n(y_lo)}V{_n(y_hi)}'
                f'M{_n(mid - 6)} {_n(y_lo)}h12M{_n(mid - 6)} {_n(y_hi)}h12" stroke="#111"/>'
            )
        if item.note:
            body.append(_text(mid, highest - 6, item.note))
    if reference is not None:
        y = y_of(reference)
        body.append(
            f'<line class="reference" x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_W}" y2="{_n(y)}" '
            f'stroke="#c53030" stroke-dasharray="6 4"/>'
        )
        body.append(_text(WIDTH - RIGHT, TOP - 12, f"- - {reference_label}", anchor="end",
                          extra=' fill="#c53030"'))
    return _frame(title, body, left=left, below=below)
