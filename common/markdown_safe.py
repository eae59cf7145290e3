"""A task's brief (Markdown written by whoever wrote the task repository) as HTML that is safe
to show on the candidate's landing page.

markdown-it-py (CommonMark, plus tables) turns the Markdown into HTML; nh3 (ammonia) then keeps
only an allow-list of tags and attributes, whatever the Markdown or its raw HTML contained. Both
layers are libraries; what is written here is only the policy:

- Raw HTML in the brief is parsed, then anything not on the list goes (``<script>``,
  ``<style>``, ``<iframe>`` with their content; event handlers; ``style`` attributes).
- Links keep only absolute ``http``, ``https`` and ``mailto`` targets (entity tricks are decoded
  by the HTML parser before the check); they open in a new tab with ``rel="noopener
  noreferrer"``, so the task's site learns neither the landing page's address nor gets a handle
  on it. A relative link (a file of the task) has no target on this page: it stays as text.
- Images are never loaded: a remote image would tell its server when the candidate opened the
  link, from which address and with which browser (a tracking pixel), and a relative one has
  nowhere to be served from here. A Markdown image becomes a link labelled with its alt text,
  which the candidate may choose to follow; a raw ``<img>`` is dropped.
- Headings move one level down (``#`` becomes ``<h2>``): the page's own ``<h1>`` is the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
TAGS = frozenset({
    "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre", "code", "kbd", "samp",
    "strong", "em", "b", "i", "del", "s", "sub", "sup", "ul", "ol", "li", "a", "table",
    "thead", "tbody", "tr", "th", "td", "details", "summary",
})
ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"},
                                   "th": {"colspan", "rowspan"}, "td": {"colspan", "rowspan"}}


def _absolute_link(url: str) -> bool:
    try:
        return urlsplit(url.strip()).scheme.lower() in LINK_SCHEMES
    except ValueError:  # e.g. an invalid IPv6 host
        return False


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """nh3's filter: a link's target only if absolute and of an allowed scheme."""
    if tag == "a" and name == "href" and not _absolute_link(value):
        return None
    return value


def _image_as_link(self: Any, tokens: Sequence[Token], idx: int, options: Any,
                   env: Any) -> str:
    """A Markdown image, not loaded: a link to it labelled with its alt text."""
    token = tokens[idx]
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = str(token.attrGet("src") or "")
    if not _absolute_link(src):
        return f"[image: {alt}]"
    return f'<a href="{escapeHtml(src)}">[image: {alt}]</a>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable("table")
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _parser()


@lru_cache(maxsize=64)
def brief_html(markdown: str) -> Markup:
    """The brief as sanitised HTML (revisions are immutable: the same text, the same HTML)."""
    tokens = _MD.parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + 1)}"
    html = _MD.renderer.render(tokens, _MD.options, {})
    clean = nh3.clean(
        html, tags=set(TAGS), attributes=ATTRIBUTES, attribute_filter=_keep_attribute,
        url_schemes=set(LINK_SCHEMES), link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}}, strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 - nh3 output: only the allow-list above survives
