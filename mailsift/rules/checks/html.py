"""What the HTML of a message does: hiding text, showing pictures instead of words, asking for input.

The analysis measures the HTML once (`Message.html`); these checks turn its counts into rules. The
thresholds are defaults of the registered rules, so a site can add stricter or looser variants in
a rule file with other arguments.
"""

from __future__ import annotations

from mailsift.analysis.model import Message
from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "html"


def _has_html(msg: Message) -> bool:
    return any(p.is_html for p in msg.text_parts)


@check("html_only",
       DefaultRule("HTML_ONLY", 1, "HTML body without a plain-text alternative", group=GROUP))
def html_only(ctx: CheckContext) -> CheckResult:
    """Mail programs send a text alternative with HTML; bulk tools often send the HTML alone."""
    parts = ctx.msg.text_parts
    return bool(parts) and all(p.is_html for p in parts)


@check("html_image_little_text",
       DefaultRule("HTML_IMAGE_ONLY_300", 2.6, "HTML with images and under 300 characters of text",
                   args=(0, 300), group=GROUP),
       DefaultRule("HTML_IMAGE_TEXT_300_1200", 1.1, "HTML with images and 300 to 1200 characters of text",
                   args=(300, 1200), group=GROUP))
def html_image_little_text(ctx: CheckContext, low: int, high: int) -> CheckResult:
    """The message is a picture: the words a filter could read are left out of the text."""
    html = ctx.msg.html
    if not html.images or not (low <= html.visible_chars < high):
        return None
    return f"{html.images} images, {html.visible_chars} characters"


@check("html_hidden_text",
       DefaultRule("HTML_HIDDEN_TEXT", 0.5, "HTML hides text from the reader (invisible or same colour)",
                   args=(30,), group=GROUP))
def html_hidden_text(ctx: CheckContext, min_chars: int) -> CheckResult:
    """Text the reader cannot see is there for the filter: random words to dilute Bayes."""
    hidden = ctx.msg.html.hidden_chars
    return f"{hidden} hidden characters" if hidden >= min_chars else None



@check("html_element",
       DefaultRule("HTML_OBJECT", 0.3, "HTML embeds an object, applet or plug-in", args=("objects",),
                   group=GROUP))
def html_element(ctx: CheckContext, counter: str) -> CheckResult:
    """Active or interactive content has no place in a letter; mail readers mostly block it."""
    count = getattr(ctx.msg.html, counter, 0)
    return f"{count} {counter}" if count else None


@check("html_comment_heavy",
       DefaultRule("HTML_COMMENT_PADDING", 1.2, "HTML carries more comment text than visible text",
                   args=(200,), group=GROUP))
def html_comment_heavy(ctx: CheckContext, min_chars: int) -> CheckResult:
    """Comments between the letters of words (or as filler) hide words from filters, not readers."""
    html = ctx.msg.html
    if html.comment_chars < min_chars or html.comment_chars <= html.visible_chars:
        return None
    return f"{html.comment_chars} comment vs {html.visible_chars} visible characters"



@check("html_text_alternative_differs",
       DefaultRule("HTML_TEXT_PART_EMPTY", 0.6, "The plain-text alternative is nearly empty next to the HTML",
                   args=(0.1,), group=GROUP))
def html_text_alternative_differs(ctx: CheckContext, ratio: float) -> CheckResult:
    """A token text part next to a full HTML one: the text is there only to look like a mail program."""
    msg = ctx.msg
    if not _has_html(msg):
        return None
    plain = sum(len(p.text.strip()) for p in msg.text_parts if not p.is_html)
    shown = sum(len(p.text.strip()) for p in msg.text_parts if p.is_html)
    if not any(not p.is_html for p in msg.text_parts) or shown < 300 or plain >= ratio * shown:
        return None
    return f"{plain} text vs {shown} HTML characters"
