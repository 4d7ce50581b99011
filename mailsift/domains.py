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
