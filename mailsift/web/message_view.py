"""A quarantined message made safe to look at: decoded headers and the text of each part.

HTML is never handed to the browser: an HTML part is shown as the text the analysis rendered from
it (the same text the rules saw), and every value goes through the template's escaping. Remote
images, scripts and tracking pixels therefore cannot load, and `<script>` in a subject is text.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailsift.analysis.parse import analyse
from mailsift.config import Config

MAX_TEXT = 200_000  # characters shown per part: enough to judge, bounded for the browser


@dataclass(frozen=True)
class Part:
    content_type: str
    charset: str
    text: str
    truncated: bool


@dataclass(frozen=True)
class MessageView:
    headers: list[tuple[str, str]]
    parts: list[Part]
    attachments: list[tuple[str, str, int]]


def message_view(config: Config, raw: bytes) -> MessageView:
    msg = analyse(raw, config)
    parts = [Part(p.content_type, p.charset, p.text[:MAX_TEXT], len(p.text) > MAX_TEXT)
             for p in msg.text_parts]
    attachments = [(a.filename or "(no name)", a.sniffed_type or a.declared_type, a.size)
                   for a in msg.attachments]
    return MessageView([(h.name, h.value) for h in msg.headers], parts, attachments)
