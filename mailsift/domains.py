"""One spelling for a domain name, whichever way a sender or an administrator wrote it.

Internationalised mail (SMTPUTF8, RFC 6531/6532) writes `jörg@bücher.example` in raw UTF-8, while
the DKIM signature of the same domain says d=xn--bcher-kva.example and the administrator may
have typed either form in the config. The DNS only knows the ASCII form (the A-label), which is
what the resolver sends whichever form it is given. Compared as written, the two spellings were
two domains: DMARC found no alignment between d=xn--bcher-kva.example and a From of
bücher.example and applied the domain's reject policy to its real mail.
"""

from __future__ import annotations

import dns.exception
import dns.name


def ascii_domain(name: str) -> str:
    """`name` lower-cased, without a final dot, with every label in its ASCII (A-label) form, as
    the resolver encodes it (IDNA 2008 with the UTS 46 mapping, so BÜCHER and bücher agree). A
    name IDNA refuses (emoji, a fraction) stays as written: it names no domain in the DNS, and
    equals only itself."""
    name = name.strip().rstrip(".").lower()
    if name.isascii():
        return name
    try:
        return dns.name.from_text(name).to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError):
        return name


def ascii_address(value: str) -> str:
    """An address (`jörg@bücher.example`), `@domain` or bare domain as compared: lower-cased, its
    domain in ASCII form (`ascii_domain`). The local part is kept as written: it is the receiving
    server's to interpret, and no mapping of it is safe to assume."""
    local, at, domain = value.strip().lower().rpartition("@")
    return f"{local}{at}{ascii_domain(domain)}"


def unicode_address(value: str) -> str:
    """`value` (as `ascii_address` makes it) with its domain in U-labels, as its people write it
    and want to read it; a domain without A-labels, or one that does not decode, as it is."""
    local, at, domain = value.rpartition("@")
    if "xn--" not in domain:
        return value
    try:
        return f"{local}{at}{dns.name.from_text(domain).to_unicode(omit_final_dot=True)}"
    except (dns.exception.DNSException, UnicodeError):
        return value


def spellings(value: str) -> list[str]:
    """The ways a store may hold `value` (an ASCII-form address or `@domain`) as Postfix gave it:
    in A-labels and in U-labels. An index looked up by one spelling finds the other's entries."""
    return list(dict.fromkeys((value, unicode_address(value))))
