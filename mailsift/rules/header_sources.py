"""The text a `header` rule matches: a real header, a `:raw/:addr/:name` view of it, or a pseudo-header.

Pseudo-headers are the ones SpamAssassin rules rely on (ALL, ALL-TRUSTED, ALL-INTERNAL,
ALL-UNTRUSTED, ALL-EXTERNAL, ToCc, MESSAGEID, EnvelopeFrom and the X-Spam-Relays-* lines);
rebuilding them here lets a site's existing rules run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsift.analysis.headers import header_value
from mailsift.analysis.model import Facts, Header, Message, Relay

# Mailing lists move the real Message-Id to one of the others; SpamAssassin's order
MESSAGE_ID_HEADERS = ("X-Message-Id", "Resent-Message-Id", "X-Original-Message-ID", "Message-Id")
ADDRESS_PART = {"addr": 1, "name": 0}


def header_text(msg: Message, name: str, mod: str) -> str | None:
    """The value a rule on `name` with modifier `mod` sees; None when the header is absent.

    As in SpamAssassin 4, every value is seen, one per line: all the headers of that name, and
    with `:addr` (`:name`) every address (display name) they hold, not only the first.
    """
    pseudo = _PSEUDO_EXACT.get(name) or _PSEUDO.get(name.lower())
    if pseudo is not None:
        return pseudo(msg, mod)
    return _headers_text(msg, (name,), mod)


def header_texts(msg: Message, name: str, mod: str) -> list[str | None]:
    """The texts a rule on `name` with modifier `mod` is matched against, one at a time: the one
    of `header_text` for a `header` rule, one per MIME part for a `mimeheader` rule."""
    mods = mod.split(":")
    if mods[0] == "mime":
        return _mime_texts(msg, name, mod, "raw" in mods)
    return [header_text(msg, name, mod)]


def _mime_texts(msg: Message, name: str, mod: str, raw: bool) -> list[str | None]:
    """As SpamAssassin's mimeheader: the message's own header block first, then each part below
    it (containers included) in message order; of each, the last field called `name`.

    A part without one gives None (the rule's `[if-unset: ...]`, else empty), except with `:raw`,
    where SpamAssassin reads an absent field as empty and so never applies `if-unset`. `ALL` is each
    part's whole header block. RFC 2231 parameters stay as written, as SpamAssassin leaves them.
    """
    if name == "ALL":
        blocks = ([Header(n, r, header_value(r, Facts())) for n, r in fields]
                  for fields in msg.part_headers)
        return [_all(msg, mod), *(_header_lines(block, mod) for block in blocks)]
    absent = "" if raw else None
    own = msg.header_raw(name) if raw else msg.header_values(name)
    texts = [own[-1] if own else absent]
    key = name.lower()
    for fields in msg.part_headers:
        found = [value for field, value in fields if field.lower() == key]
        if not found:
            texts.append(absent)
        else:  # decoded after the analysis, so a broken word here is no fact: nothing scores it
            texts.append(found[-1] if raw else header_value(found[-1], Facts()))
    return texts


def _headers_text(msg: Message, names: tuple[str, ...], mod: str) -> str | None:
    mods = set(mod.split(":"))
    part = next((ADDRESS_PART[m] for m in mods if m in ADDRESS_PART), None)
    if part is not None:
        values = [pair[part] for name in names for pair in msg.addresses(name) if pair[part]]
    else:
        values = [v for name in names
                  for v in (msg.header_raw(name) if "raw" in mods else msg.header_values(name))]
    return "\n".join(values) if values else None


def _header_lines(headers: list[Header], mod: str) -> str:
    if "raw" in mod.split(":"):
        return "".join(f"{h.name}: {h.raw}\n" for h in headers)
    return "".join(f"{h.name}: {h.value}\n" for h in headers)


def _all(msg: Message, mod: str) -> str:
    return _header_lines(msg.headers, mod)


def _to_cc(msg: Message, mod: str) -> str | None:
    return _headers_text(msg, ("To", "Cc"), mod)


def _message_id(msg: Message, mod: str) -> str | None:
    return _headers_text(msg, MESSAGE_ID_HEADERS, mod)


def _relay_headers(select: str) -> Callable[[Message, str], str | None]:
    """ALL-TRUSTED, ALL-INTERNAL (the headers above the first outside hop, its Received header
    included) and ALL-UNTRUSTED, ALL-EXTERNAL (from that Received header down), as SpamAssassin
    cuts the header block; None when the part is empty."""
    inside, below = {"trusted": ("trusted", False), "internal": ("internal", False),
                     "untrusted": ("trusted", True), "external": ("internal", True)}[select]

    def read(msg: Message, mod: str) -> str | None:
        outside = (r.received_index for r in msg.relays
                   if r.received_index >= 0 and not getattr(r, inside))
        received = [h.name.lower() == "received" for h in msg.headers]
        boundary = next(outside, sum(received))
        index, chosen = -1, []  # index: of the last Received header seen
        for header, is_received in zip(msg.headers, received, strict=True):
            index += is_received
            if index >= boundary if below else index <= boundary:
                chosen.append(header)
            if not below and index == boundary:  # the boundary's own Received header: done
                break
        return _header_lines(chosen, mod) or None

    return read


def _envelope_from(msg: Message, _mod: str) -> str | None:
    if msg.envelope.mail_from:
        return msg.envelope.mail_from
    return_path = msg.header("Return-Path")
    return return_path.strip().strip("<>") or None


def describe_relays(relays: list[Relay]) -> str:
    """Relays in the bracketed `ip=… rdns=… helo=…` form that SpamAssassin's relay rules parse."""
    return " ".join(
        f"[ ip={r.ip} rdns={r.rdns} helo={r.helo} by={r.by} ident={r.ident} envfrom={r.envfrom} "
        f"intl={int(r.internal)} id={r.id} auth={r.auth} msa=0 ]"
        for r in relays
    )


def _relays(select: str) -> Callable[[Message, str], str]:
    def read(msg: Message, _mod: str) -> str:
        chosen = {
            "trusted": [r for r in msg.relays if r.trusted],
            "untrusted": [r for r in msg.relays if not r.trusted],
            "internal": [r for r in msg.relays if r.internal],
            "external": [r for r in msg.relays if not r.internal],
        }[select]
        return describe_relays(chosen)

    return read


# Spelled exactly so, as SpamAssassin compares them: `exists:MessageID` is an ordinary header
_PSEUDO_EXACT = {
    "ALL": _all,
    "MESSAGEID": _message_id,
    **{f"ALL-{select.upper()}": _relay_headers(select)
       for select in ("trusted", "internal", "untrusted", "external")},
}
# In any case
_PSEUDO = {
    "tocc": _to_cc,
    "envelopefrom": _envelope_from,
    "x-spam-relays-trusted": _relays("trusted"),
    "x-spam-relays-untrusted": _relays("untrusted"),
    "x-spam-relays-internal": _relays("internal"),
    "x-spam-relays-external": _relays("external"),
}
