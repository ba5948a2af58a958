"""`markdown`: descriptions written in Markdown, rendered and sanitised for any page.

    {% load markdown %}
    {{ dataset.description|markdown }}            (safe HTML)
    {{ dataset.description|markdown_text|truncatechars:140 }}   (plain text, escaped as usual)

Markdown-it (CommonMark + tables + strikethrough) runs with `html=False`, so raw HTML in the
text is shown as text; nh3 then keeps only the tags and attributes below, links only with
http, https or mailto (or relative), and gives every link `rel="noopener noreferrer nofollow"`.
Headings are demoted by two levels (# → h3) so a description never outranks the page's own
h1/h2. Images are dropped: a description cannot make the browser fetch anything.
"""

from __future__ import annotations

import html
import re

import nh3
from django import template
from django.utils.html import strip_tags
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "blockquote", "hr", "del", "s",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"
HEADING_SHIFT = 2
MAX_CHARS = 100_000  # a description longer than this is cut before rendering (bounded work per page)

_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """Sanitised HTML for the Markdown `text` (an empty string for none)."""
    if not text:
        return ""
    tokens = _md.parse(str(text)[:MAX_CHARS])
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(6, int(token.tag[1]) + HEADING_SHIFT)
            token.tag = f"h{level}"
    rendered = _md.renderer.render(tokens, _md.options, {})
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


@register.filter(name="markdown", is_safe=True)
def markdown_filter(text) -> SafeString:
    return mark_safe(render_markdown(text))  # nh3 sanitised it in render_markdown


@register.filter(name="markdown_text")
def markdown_text(text) -> str:
    """The description as plain text (Markdown rendered, tags dropped, whitespace folded), for lists."""
    return re.sub(r"\s+", " ", html.unescape(strip_tags(render_markdown(text)))).strip()
