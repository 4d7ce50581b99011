"""The text a `header` rule matches: a real header, a `:raw/:addr/:name` view of it, or a pseudo-header.

Pseudo-headers are the ones SpamAssassin rules rely on (ALL, ToCc, MESSAGEID, EnvelopeFrom and the
X-Spam-Relays-* lines); rebuilding them here lets a site's existing rules run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsift.analysis.model import Message, Relay

MESSAGE_ID_HEADERS = ("Message-Id", "Resent-Message-Id", "X-Message-Id")
ADDRESS_PART = {"addr": 1, "name": 0}


def header_text(msg: Message, name: str, mod: str) -> str | None:
    """The value a rule on `name` with modifier `mod` sees; None when the header is absent."""
    pseudo = _PSEUDO.get(name.lower())
    if pseudo is not None:
        return pseudo(msg, mod)
    values = msg.header_raw(name) if mod == "raw" else msg.header_values(name)
    if not values:
        return None
    if mod in ADDRESS_PART:
        pairs = msg.addresses(name)  # `:addr` is the first address, `:name` its display name
        return pairs[0][ADDRESS_PART[mod]] if pairs else ""
    return "\n".join(values)


def _all(msg: Message, mod: str) -> str:
    if mod == "raw":
        return "".join(f"{h.name}: {h.raw}\n" for h in msg.headers)
    return "".join(f"{h.name}: {h.value}\n" for h in msg.headers)


def _to_cc(msg: Message, _mod: str) -> str | None:
    values = msg.header_values("To") + msg.header_values("Cc")
    return ", ".join(values) if values else None


def _message_id(msg: Message, _mod: str) -> str | None:
    values = [v for name in MESSAGE_ID_HEADERS for v in msg.header_values(name)]
    return "\n".join(values) if values else None


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


_PSEUDO = {
    "all": _all,
    "tocc": _to_cc,
    "messageid": _message_id,
    "envelopefrom": _envelope_from,
    "x-spam-relays-trusted": _relays("trusted"),
    "x-spam-relays-untrusted": _relays("untrusted"),
    "x-spam-relays-internal": _relays("internal"),
    "x-spam-relays-external": _relays("external"),
}
