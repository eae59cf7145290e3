"""The calibration chart's labels, drawn by real Chromium: every text of a bar chart with long
dimension titles (slanted) lies inside the SVG's canvas, none cut off at the left or bottom edge
(as "Navigating unfamiliar code" was on the calibration page)."""

from __future__ import annotations

import pytest

from scoring.charts import Bar, bars
from tests.browser import Browsing

pytestmark = [pytest.mark.browser]

TITLES = ["Navigating unfamiliar code", "Debugging approach", "Testing and verification",
          "Communication while pairing"]


@pytest.mark.parametrize("count", [2, 4, 6])
async def test_slanted_labels_are_inside_the_chart(browsing: Browsing, count: int) -> None:
    items = [Bar(TITLES[i % len(TITLES)] + (" (again)" if i >= len(TITLES) else ""),
                 0.6 if i % 4 != 3 else None, 0.4, 0.8, note="n = 24") for i in range(count)]
    svg = bars(items, title="Agreement per dimension (Krippendorff's ordinal alpha, 95% CI)",
               y_label="alpha", y_range=(-1.0, 1.0), reference=0.667,
               reference_label="0.667: reliable")
    page = browsing.page
    await page.set_content(f"<body style='margin:0'>{svg}</body>")
    outside = await page.evaluate("""() => {
        const box = document.querySelector('svg').getBoundingClientRect();
        return [...document.querySelectorAll('svg text')].map(t => {
            const r = t.getBoundingClientRect();
            return [t.textContent, r.left - box.left, r.top - box.top,
                    box.right - r.right, box.bottom - r.bottom];
        }).filter(([, l, t, r, b]) => Math.min(l, t, r, b) < -0.5);
    }""")
    assert outside == [], outside
    labels = await page.locator("svg text").all_text_contents()
    assert all(item.label in labels for item in items), labels
