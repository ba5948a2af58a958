"""The `markdown` template filter: Markdown rendered, then sanitised; nothing a description says can run."""

import pytest
from django.template import Context, Template
from django.utils.safestring import SafeString

from lepton.templatetags.markdown import markdown_filter, markdown_text, render_markdown


def test_renders_commonmark_tables_and_strikethrough_keeping_chinese():
    html = render_markdown("**温度** 传感器 *line 3*\n\n| 机器 | 温度 |\n|---|--:|\n| M1 | 70 |\n\n~~old~~\n\n- a\n- b\n\n`code`")
    assert "<strong>温度</strong> 传感器 <em>line 3</em>" in html
    assert "<table>" in html and "<th>机器</th>" in html and "<td>70</td>" in html
    assert "style=" not in html  # the alignment style of the table is dropped
    assert "<s>old</s>" in html and "<li>a</li>" in html and "<code>code</code>" in html


def test_headings_are_demoted_below_the_page_headings():
    html = render_markdown("# Top\n\n## Second\n\n###### Deep")
    assert "<h3>Top</h3>" in html and "<h4>Second</h4>" in html and "<h6>Deep</h6>" in html
    assert "<h1" not in html and "<h2" not in html


def test_links_get_rel_and_only_safe_schemes():
    html = render_markdown('[site](https://example.com "Title") [mail](mailto:a@example.com) [bad](javascript:alert(1))')
    assert '<a href="https://example.com" title="Title" rel="noopener noreferrer nofollow">site</a>' in html
    assert 'href="mailto:a@example.com"' in html
    assert 'href="javascript' not in html and "[bad](javascript:alert(1))" in html  # inert text, never a link
    assert html.count("<a ") == 2


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<div onclick="alert(1)">raw html</div>',
        "<iframe src=https://evil.example></iframe>",
    ],
)
def test_raw_html_is_shown_as_text_not_markup(text):
    html = render_markdown(text)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "<div" not in html
    assert "<a " not in html
    assert "&lt;" in html  # the text is still there, escaped


def test_javascript_links_in_other_spellings_are_not_links():
    for link in (
        "[x](JaVaScRiPt:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
    ):
        assert "<a " not in render_markdown(link), link


def test_images_are_dropped_even_with_data_urls():
    html = render_markdown("before ![chart](data:image/png;base64,iVBORw0KGgo=) ![x](https://example.com/a.png) after")
    assert "<img" not in html and "data:" not in html and "before" in html and "after" in html


def test_attributes_outside_the_allow_list_are_removed():
    # markdown-it writes class="language-…" on fenced code; only a[href title] and ol[start] survive.
    html = render_markdown("```python\nprint('温度')\n```\n\n3. three\n4. four")
    assert "<pre><code>print(" in html and "class=" not in html
    assert '<ol start="3">' in html


def test_filter_returns_safe_html_and_handles_empty_values():
    assert isinstance(markdown_filter("*x*"), SafeString)
    assert markdown_filter("") == "" and markdown_filter(None) == ""
    rendered = Template("{% load markdown %}{{ text|markdown }}").render(Context({"text": "**a** <b>raw</b>"}))
    assert "<strong>a</strong>" in rendered and "&lt;b&gt;raw&lt;/b&gt;" in rendered


def test_plain_text_variant_for_lists_is_escaped_by_the_template():
    assert markdown_text("# 温度\n\n**bold** and [link](https://x.org)\n\n- a") == "温度 bold and link a"
    rendered = Template("{% load markdown %}{{ text|markdown_text }}").render(Context({"text": "<script>x</script> & more"}))
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
