"""HTML parts: visible text, hidden and tiny text, and what the markup does."""

from __future__ import annotations

from mailsift.analysis.model import Message
from tests.analysis.helpers import run, simple
from tests.support.cpu_time import cpu_time


def html_message(html: str) -> Message:
    return run(simple(html, "text/html; charset=utf-8"))


def test_visible_text_skips_head_script_style_and_comments_and_breaks_blocks() -> None:
    message = html_message(
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<script>var hidden = 1;</script><!-- a comment -->"
        "<h1>Title</h1><p>First <b>bold</b>&nbsp;para</p><div>Second</div>line<br>break"
        "<table><tr><td>c1</td><td>c2</td></tr></table></body></html>")
    part = message.text_parts[0]
    assert part.is_html
    assert part.text == "Title\nFirst bold para\nSecond\nline\nbreak\nc1 c2"
    assert "<b>" in part.raw_text
    assert message.html.scripts == 1
    assert message.html.comment_chars == len("a comment")
    assert message.html.parts == 1


def test_hidden_text_is_counted_but_not_shown() -> None:
    message = html_message(
        '<p>Shown</p><div style="display: none">secret one</div>'
        '<span style="visibility:hidden">secret two</span>'
        '<font color="#FFFFFF">white on white</font>'
        '<div style="background-color: #000"><font color=black>black on black</font></div>'
        '<table><tr><td bgcolor="red"><span style="color: rgb(255, 0, 0)">red on red</span></td>'
        '</tr></table>')
    assert message.text_parts[0].text == "Shown"
    expected = ["secret one", "secret two", "white on white", "black on black", "red on red"]
    assert message.html.hidden_chars == sum(len(s) for s in expected)
    assert message.html.visible_chars == len("Shown")


def test_tiny_text_is_counted_and_still_shown() -> None:
    message = html_message('<p>normal</p><span style="font-size:1px">tiny one</span>'
                           '<font size="1">tiny two</font><font size="-2">tiny3</font>')
    assert message.html.tiny_chars == len("tiny one") + len("tiny two") + len("tiny3")
    assert "tiny one" in message.text_parts[0].text


def test_zero_width_characters_are_removed_from_text() -> None:
    assert html_message("<p>V\u200bi\u00adagra</p>").text_parts[0].text == "Viagra"


def test_images_forms_iframes_objects_are_counted() -> None:
    message = html_message(
        '<img src="http://img.example.com/a.gif" width="100" height="50">'
        '<img src="cid:part1@example.com" width=10 height=10><img src="//cdn.example.net/x.png">'
        '<form action="https://phish.example.net/login"><input name=p></form>'
        '<iframe src="http://frame.example.org/"></iframe><object data=x></object><embed src=y>')
    html = message.html
    assert (html.images, html.image_area, html.remote_images) == (3, 5100, 2)
    assert (html.forms, html.iframes, html.objects) == (1, 1, 2)
    hosts = {u.host for u in message.uris}
    assert {"img.example.com", "phish.example.net", "frame.example.org", "cdn.example.net"} <= hosts
    assert all(u.source == "html" for u in message.uris)


def test_link_text_naming_another_domain_is_a_mismatch() -> None:
    message = html_message(
        '<a href="http://paypal.com.evil.example.ru/login">www.PayPal.com</a> '
        '<a href="https://www.paypal.com/help">https://paypal.com/help</a> '
        '<a href="http://192.0.2.7/">bank.example.com</a> <a href="http://x.example/">click here</a>')
    assert message.html.links == 4
    assert message.html.link_mismatches == [
        ("www.PayPal.com", "example.ru"), ("bank.example.com", "192.0.2.7")]
    anchors = {u.host: u.anchor_text for u in message.uris if u.source == "html"}
    assert anchors["x.example"] == "click here"


def test_plain_urls_in_html_text_are_found_too() -> None:
    message = html_message("<p>Visit www.Example.com/offer today</p>")
    assert [(u.url, u.source) for u in message.uris] == [("http://www.example.com/offer", "text")]


def test_unterminated_html_is_malformed_but_rendered() -> None:
    message = html_message('<html><body><p>Cheap pills <a href="http://x.example/')
    assert "HTML_MALFORMED" in message.facts
    assert message.html.malformed
    assert message.text_parts[0].text == "Cheap pills"


def test_well_formed_html_has_no_fact() -> None:
    message = html_message("<!DOCTYPE html><html><body><p>Hello <!-- c --> there</p></body></html>")
    assert not message.facts.items


def test_markup_nested_too_deep_under_an_open_bold_or_link_is_read_in_linear_time() -> None:
    """Markup too deep to parse as written is flattened to spans, but <a>, <b>, <font>, <i> and
    <u> were kept, and while one is open the tree builder looks for it down the stack of open
    elements at each start tag: on the old code <b> and 200,000 nested <div> (1 MB) took 6.5 s
    of CPU, in the milter, `mailsift learn` and the message page alike. A flattened link and
    font are still read as such; a tag of the sender's named as the walk's own is a span."""
    for opener in ("<b>", '<a href="http://x.example/">', "<font>"):
        html = opener + "<div>" * 200_000 + "deep"
        message, seconds = cpu_time(lambda html=html: html_message(html))  # 0.35 s
        assert seconds < 2.0, opener
        assert message.text_parts[0].text == "deep"
    message = html_message('<p>top <a href="http://x.example/">link <b>text</b></a> '
                           "<font color=white>hidden</font> "
                           "<mailsift-font color=white>shown</mailsift-font>" + "<div>" * 3000)
    assert message.text_parts[0].text == "top link text shown"
    assert [(uri.raw, uri.anchor_text) for uri in message.uris if uri.source == "html"] == [
        ("http://x.example/", "link text")]
    assert message.html.links == 1
    assert message.html.hidden_chars == len("hidden")
