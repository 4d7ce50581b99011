"""This host's name, as Postfix's myhostname takes it by default.

Both the review UI (the link a digest gives to a UI listening on every address) and the network
checks (the Authentication-Results authserv-id of `mailsift check`, or of a milter that Postfix
did not tell its name) ask it; it lives here so that neither pulls in the other.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import cache


@cache
def host_name() -> str:
    """This host's name: gethostname() when it is fully qualified, else the canonical name the
    resolver gives it (as Postfix's myhostname defaults to the fully qualified name), else the
    short name. Not socket.getfqdn(): where /etc/hosts maps the host name to 127.0.0.1 after
    "localhost" (many containers), it answers "localhost", a link that leads every user's browser
    to their own machine and an authserv-id no downstream filter trusts. Looked up once: a digest
    run asks for each user's mail, a worker for each message."""
    name = socket.gethostname()
    if "." in name:
        return name
    try:
        canonical = socket.getaddrinfo(name, None, flags=socket.AI_CANONNAME)[0][3]
    except (OSError, IndexError):
        return name
    return canonical if "." in canonical and not is_loopback_name(canonical) else name


def is_loopback_name(host: str) -> bool:
    """A loopback address, or a name that means one wherever it is looked up (RFC 6761's
    localhost); a name this host's /etc/hosts maps to 127.0.1.1 (Debian's default) may still be
    one its users' DNS leads elsewhere, so names are not resolved."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
