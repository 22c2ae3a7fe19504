"""Safe Markdown: markdown-it-py renders (raw HTML off), nh3 sanitises the result."""

from __future__ import annotations

from functools import lru_cache

import nh3
from flask import Flask
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_TAGS = {
    "p", "br", "strong", "em", "a", "ul", "ol", "li", "blockquote", "h2", "h3", "h4",
    "code", "pre", "hr",
}


@lru_cache(maxsize=512)
def render(text: str) -> Markup:
    """Markdown to sanitised HTML; links get rel="noopener noreferrer nofollow"."""
    html = _md.render(text or "")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


def init_app(app: Flask) -> None:
    """Register the `markdown` template filter."""
    app.add_template_filter(render, "markdown")
