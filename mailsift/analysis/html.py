"""HTML parts: the text a reader sees, what the markup does, and the links it carries.

Body rules must match what the recipient reads, not what the spammer hid for the filter: text in
`display:none` blocks, white-on-white or zero-size fonts is counted (spam signals) but left out of
the visible text. The lexbor parser builds the same tree a browser would from broken markup; one
iterative walk over it (no recursion, so absurd nesting cannot exhaust the stack) gathers
everything at once.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

from mailsift.analysis.model import HtmlFacts

# Elements a browser does not render as text.
SKIPPED = frozenset({"head", "script", "style", "title", "noscript", "template", "-comment"})
# Elements that start a new line of text.
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "center", "dd", "div", "dl", "dt",
    "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
})
OBJECTS = frozenset({"object", "embed", "applet"})
LINK_ATTRIBUTES = ("href", "src", "action", "background")
LINK_ATTRIBUTE_SET = frozenset(LINK_ATTRIBUTES)
# Attributes _look reads on any element (`<font>` is read whole: color and size).
LOOK_ATTRIBUTES = frozenset({"hidden", "bgcolor", "style"})
# Elements _count counts even without attributes.
COUNTED_BARE = frozenset({"img", "form", "iframe", "frame"}) | OBJECTS
STYLE_PROPERTY = re.compile(
    r"(display|visibility|font-size|color|background-color|background|opacity)\s*:\s*([^;]+)")
FONT_SIZE = re.compile(r"([0-9]*\.?[0-9]+)\s*(px|pt|em|rem|%|ex)?")
LEADING_INT = re.compile(r"\s*([0-9]{1,5})")
# Text separators: the walk marks block boundaries with NUL (removed from the input beforehand)
# so that one pass of each expression below turns source white space into rendered white space.
BLOCK_MARK = "\0"
SPACES = re.compile(r"[ \t\n\r\f\v\xa0]+")
BREAKS = re.compile(r" ?\0[\0 ]*")
# Zero-width characters render as nothing; spammers put them inside words to defeat body rules.
INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
# Below 4px nobody reads text; `<font size=1>` is the smallest legacy size.
TINY_PX = 4.0
UNIT_PX = {"px": 1.0, "pt": 4 / 3, "em": 16.0, "rem": 16.0, "%": 0.16, "ex": 8.0}
NAMED_COLOURS = {
    "white": "#ffffff", "black": "#000000", "red": "#ff0000", "lime": "#00ff00", "blue": "#0000ff",
    "yellow": "#ffff00", "silver": "#c0c0c0", "gray": "#808080", "grey": "#808080",
    "green": "#008000", "navy": "#000080", "maroon": "#800000", "purple": "#800080",
    "teal": "#008080", "olive": "#808000", "aqua": "#00ffff", "fuchsia": "#ff00ff",
    "orange": "#ffa500",
}
# The HTML5 tree builder scans the stack of open elements for many start tags, so markup that
# leaves thousands of elements open costs quadratic time (100,000 nested <div> take lexbor 20 s).
MAX_UNCLOSED = 2000
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                  "source", "track", "wbr"})
# Elements the parser closes when a sibling opens (`<p>a<p>b`, `<li>`...): unclosed, they do not nest.
SELF_CLOSING = frozenset({"body", "colgroup", "dd", "dt", "head", "html", "li", "optgroup", "option", "p",
                          "rb", "rp", "rt", "rtc", "tbody", "td", "tfoot", "th", "thead", "tr"})
TAG_NAME = re.compile(r"<(/?)([a-z][a-z0-9]*)")
# Tags kept as they are when such markup is flattened: no stack scans, or needed to skip content.
FLATTEN = re.compile(r"<(/?)(?!(?:a|body|br|font|head|html|img|script|span|style|title)[\s/>])"
                     r"[a-zA-Z][\w:-]*", re.IGNORECASE)
# The formatting elements the walk reads (links, font colours) get names the tree builder does
# not know when markup is flattened, and the walk reads them by their own. While one of the
# formatting elements (a, b, font, i, nobr...) is open, the builder looks for it down the stack
# of open elements at each start tag, so even the spans of flattened markup cost quadratic time:
# <b> and 200,000 nested <div> (1 MB) took lexbor 6.5 s. <b>, <i> and <u> become spans.
FORMATTING = re.compile(r"<(/?)(a|font)(?=[\s/>])", re.IGNORECASE)
RENAMED = "mailsift-"  # FLATTEN has made a span of every tag of the sender's with this name
UNRENAMED = {f"{RENAMED}a": "a", f"{RENAMED}font": "font"}
RGB = re.compile(r"rgba?\(([0-9]+),([0-9]+),([0-9]+)")


class Look(NamedTuple):
    """How text at this point of the tree is shown."""

    hidden: bool
    tiny: bool
    colour: str
    background: str


DEFAULT_LOOK = Look(False, False, "#000000", "#ffffff")


@dataclass(slots=True)
class Link:
    url: str
    tag: str
    anchor_text: str = ""


@dataclass(slots=True)
class Rendered:
    text: str
    links: list[Link] = field(default_factory=list)


def render(html: str, facts: HtmlFacts) -> Rendered:
    """Visible text and links of one HTML part; counts go into `facts` (shared by all parts)."""
    facts.parts += 1
    html = html.replace("\0", "")
    if _looks_malformed(html):
        facts.malformed = True
    flattened = _too_deep(html)
    if flattened:
        facts.malformed = True
        html = FORMATTING.sub(rf"<\1{RENAMED}\2", FLATTEN.sub(r"<\1span", html))
    root = LexborHTMLParser(html).root
    if root is None:
        return Rendered("")
    walker = _Walker(facts, UNRENAMED if flattened else {})
    walker.run(root)
    text = INVISIBLE.sub("", "".join(walker.out))
    text = BREAKS.sub("\n", SPACES.sub(" ", text)).strip()
    return Rendered(text, walker.links)


def _looks_malformed(html: str) -> bool:
    """Markup that ends inside a tag or leaves a comment open: browsers guess, and so do spammers."""
    return html.rfind("<") > html.rfind(">") or html.count("<!--") > html.count("-->")


def _too_deep(html: str) -> bool:
    """Whether the markup leaves more elements open than the tree builder can nest cheaply.

    Per tag name, start tags minus end tags (never below zero, so stray end tags do not hide
    anything) bounds the nesting depth from above. Markup over the limit is parsed with its
    structural tags turned into <span>s: text, links and styles stay, line breaks between blocks
    are lost, and the parse is linear again.
    """
    if html.count("<") < MAX_UNCLOSED:
        return False
    counts = Counter(TAG_NAME.findall(html.lower()))
    unclosed = sum(max(0, n - counts["/", name]) for (slash, name), n in counts.items()
                   if not slash and name not in VOID and name not in SELF_CLOSING)
    return unclosed > MAX_UNCLOSED


class _Walker:
    """One depth-first pass over the tree with an explicit stack."""

    def __init__(self, facts: HtmlFacts, renamed: dict[str, str]) -> None:
        """`renamed`: tag -> the tag it stands for, in flattened markup (see FORMATTING)."""
        self.facts = facts
        self.renamed = renamed
        self.out: list[str] = []
        self.links: list[Link] = []
        self.anchor: list[str] | None = None  # text pieces of the open <a href>
        self.anchor_link: Link | None = None

    def run(self, root: LexborNode) -> None:
        # Items are (node, look) to visit, or (None, marker) to run when a subtree is done.
        stack: list[tuple[LexborNode | None, Look | str]] = [(root, DEFAULT_LOOK)]
        pop, push = stack.pop, stack.append
        while stack:
            node, look = pop()
            if node is None:
                self._close(look)
                continue
            tag = node.tag
            if self.renamed:
                tag = self.renamed.get(tag, tag)  # type: ignore[arg-type]
            if tag == "-text":
                self._text(node.text_content or "", look)  # type: ignore[arg-type]
                continue
            if tag in SKIPPED or tag is None:
                self._skipped(node, tag)
                continue
            look = self._element(node, tag, look)  # type: ignore[arg-type]
            if tag == "a" and self.anchor is not None:
                push((None, "a"))
            if tag in BLOCKS:
                self.out.append(BLOCK_MARK)
                push((None, BLOCK_MARK))
            elif tag in ("td", "th"):
                self.out.append(" ")
            child = node.last_child  # pushed last first, so that they are visited in order
            while child is not None:
                push((child, look))
                child = child.prev

    def _close(self, marker: Look | str) -> None:
        if marker == "a" and self.anchor is not None and self.anchor_link is not None:
            self.anchor_link.anchor_text = " ".join("".join(self.anchor).split())
            self.anchor = self.anchor_link = None
        elif marker == BLOCK_MARK:
            self.out.append(BLOCK_MARK)

    def _text(self, text: str, look: Look) -> None:
        size = len(text.strip())
        if not size:
            self.out.append(text)
            return
        facts = self.facts
        if look.hidden or look.colour == look.background:
            facts.hidden_chars += size
            return
        facts.visible_chars += size
        if look.tiny:
            facts.tiny_chars += size
        self.out.append(text)
        if self.anchor is not None:
            self.anchor.append(text)

    def _skipped(self, node: LexborNode, tag: str | None) -> None:
        if tag == "-comment":
            self.facts.comment_chars += len(node.comment_content or "")
        elif tag == "script":
            self.facts.scripts += 1
            self._links(node.attributes, "script")
        elif tag == "head":
            for child in node.css("script"):
                self.facts.scripts += 1
                self._links(child.attributes, "script")

    def _element(self, node: LexborNode, tag: str, look: Look) -> Look:
        attributes = node.attributes
        if attributes:
            self._count(tag, attributes)
            # Most attributes (width, align, class...) change neither counts nor looks.
            if tag == "font" or LOOK_ATTRIBUTES & attributes.keys():
                return _look(tag, attributes, look)
            return look
        if tag in COUNTED_BARE:
            self._count(tag, attributes)
        return look

    def _count(self, tag: str, attributes: dict[str, str | None]) -> None:
        facts = self.facts
        href = attributes.get("href")
        if tag == "a" and href:
            facts.links += 1
            self.anchor_link = Link(href.strip(), tag)
            self.links.append(self.anchor_link)
            self.anchor = []
            return
        if tag == "img":
            facts.images += 1
            facts.image_area += _int(attributes.get("width")) * _int(attributes.get("height"))
            src = (attributes.get("src") or "").lstrip().lower()
            if src.startswith(("http:", "https:", "//")):
                facts.remote_images += 1
        elif tag == "form":
            facts.forms += 1
        elif tag in ("iframe", "frame"):
            facts.iframes += 1
        elif tag in OBJECTS:
            facts.objects += 1
        self._links(attributes, tag)

    def _links(self, attributes: dict[str, str | None], tag: str) -> None:
        if LINK_ATTRIBUTE_SET & attributes.keys():
            for name in LINK_ATTRIBUTES:
                value = attributes.get(name)
                if value:
                    self.links.append(Link(value.strip(), tag))


def _look(tag: str, attributes: dict[str, str | None], look: Look) -> Look:
    hidden, tiny, colour, background = look
    if "hidden" in attributes:
        hidden = True
    if tag == "font":
        colour = _colour(attributes.get("color")) or colour
        tiny = tiny or _tiny_font_size(attributes.get("size"))
    background = _colour(attributes.get("bgcolor")) or background
    style = attributes.get("style")
    if style:
        for prop, value in STYLE_PROPERTY.findall(style.lower()):
            value = value.strip()
            if prop in ("display", "visibility", "opacity"):
                hidden = hidden or _hides(prop, value)
            elif prop == "font-size":
                tiny = _tiny_css_size(value)
            elif prop == "color":
                colour = _colour(value) or colour
            else:
                background = _colour(value.split()[0] if value else "") or background
    return Look(hidden, tiny, colour, background)


def _hides(prop: str, value: str) -> bool:
    if prop == "display":
        return value.startswith("none")
    if prop == "visibility":
        return value.startswith(("hidden", "collapse"))
    return _float(value) == 0.0


def _tiny_font_size(size: str | None) -> bool:
    """`<font size>`: 1..7, or relative to the default 3 when signed."""
    if not size:
        return False
    size = size.strip()
    number = _int(size.lstrip("+-"))
    if size.startswith("-"):
        number = 3 - number
    elif size.startswith("+"):
        number = 3 + number
    return number <= 1


def _tiny_css_size(value: str) -> bool:
    match = FONT_SIZE.match(value)
    if match is None:
        return False
    return float(match[1]) * UNIT_PX.get(match[2] or "px", 1.0) < TINY_PX


def _colour(value: str | None) -> str:
    """A colour in one spelling (#rrggbb where known) so that equal colours compare equal."""
    if not value:
        return ""
    value = value.strip().lower().replace(" ", "")
    value = NAMED_COLOURS.get(value, value)
    if value.startswith("#") and len(value) == 4:
        return "#" + "".join(c * 2 for c in value[1:])
    if len(value) == 6 and all(c in "0123456789abcdef" for c in value):
        return "#" + value
    match = RGB.match(value)
    if match:
        return "#" + "".join(f"{min(int(c), 255):02x}" for c in match.groups())
    return "" if value in ("transparent", "inherit", "initial", "none") else value


def _int(value: str | None) -> int:
    match = LEADING_INT.match(value or "")
    return int(match[1]) if match else 0


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
