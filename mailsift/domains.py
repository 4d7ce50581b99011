"""One spelling for a domain name, whichever way a sender or an administrator wrote it.

Internationalised mail (SMTPUTF8, RFC 6531/6532) writes `jörg@bücher.example` in raw UTF-8, while
the DKIM signature of the same domain says d=xn--bcher-kva.example and the administrator may
have typed either form in the config. The DNS only knows the ASCII form (the A-label), which is
what the resolver sends whichever form it is given. Compared as written, the two spellings were
two domains: DMARC found no alignment between d=xn--bcher-kva.example and a From of
bücher.example and applied the domain's reject policy to its real mail.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

import dns.exception
import dns.name

# The codec dns.name.from_text, and so the resolver, encodes labels with: IDNA 2008 with the
# UTS 46 mapping, non-transitional (straße is not strasse), ASCII labels as they are.
IDNA = dns.name.IDNA_2008_Practical
# What dnspython, as UTS 46, takes for a dot between labels: 。 ． ｡ as well as "."
DOTS = ".\u3002\uff0e\uff61"
SPLIT_LABELS = re.compile(f"[{re.escape(DOTS)}]")
# The longest label and name (written with dots) the DNS has (RFC 1035): longer names no domain.
MAX_LABEL, MAX_NAME = 63, 253
# A sign no label of a mail domain has in ASCII form: they are letters, digits and '-' (RFC 5321's
# host names), and '_', which names of records (_dmarc.example.org) and some hosts carry.
NOT_IN_LABEL = re.compile(r"[^a-z0-9_-]")


def ascii_domain(name: str) -> str:
    """`name` lower-cased, without a final dot, with every label in its ASCII (A-label) form, as
    the resolver encodes it (IDNA 2008 with the UTS 46 mapping, so BÜCHER and bücher agree). A
    name IDNA refuses (emoji, a fraction) stays as written: it names no domain in the DNS, and
    equals only itself.

    Each label is encoded on its own, not read by dns.name.from_text: that reads zone-file
    escapes, and bü\\099her.example would have been bücher.example, though no mail system
    reads a backslash in a domain so (a pure-ASCII name was never read so either). A name with
    a backslash is therefore left as written too."""
    name = name.strip().rstrip(DOTS).lower()
    if name.isascii() or "\\" in name:
        return name
    try:
        labels = [IDNA.encode(label) for label in SPLIT_LABELS.split(name)]
        dns.name.Name([*labels, b""])  # refuses an empty label, or one or a name too long
    except (dns.exception.DNSException, UnicodeError):
        return name
    return b".".join(labels).decode("ascii").lower()


def name_problem(name: str) -> str:
    """Why `name`, in ASCII form as `ascii_domain` makes it, can be no mail domain ('' when it can
    be one): a name IDNA refused, one label only, an empty label, a letter no host name has, a
    label starting or ending with '-' or longer than MAX_LABEL, a name longer than MAX_NAME, or a
    top-level label that is a number, one letter or has '_' (no top-level domain is so written).
    The one rule for what a domain may be: a list entry, and a domain in mailsift.toml, that
    breaks it matches no mail, and was taken in silence."""
    labels = name.split(".")
    problem = (_written_problem(name, labels) or _letter_problem(labels)
               or _length_problem(name, labels))
    return problem or _top_level_problem(name, labels[-1])


def _written_problem(name: str, labels: list[str]) -> str:
    """Why `name` is not written as a domain: not in ASCII, one label, or an empty label."""
    if not name.isascii():
        return ("IDNA refuses it (a sign no domain may have, e.g. an emoji or an invisible "
                "joiner), so no domain is written so")
    if len(labels) < 2:
        return "one label only; a domain has a dot, e.g. example.org"
    if "" in labels[1:]:
        return "two dots in a row; write the domain as its mail gives it"
    if not labels[0]:
        return f"a dot first; write {name.lstrip('.')}"
    return ""


def _letter_problem(labels: list[str]) -> str:
    """Why a label holds what no host name may: a sign NOT_IN_LABEL, or '-' at an end."""
    for label in labels:
        letter = NOT_IN_LABEL.search(label)
        if letter:
            return (f"no domain has {letter[0]!r} in a label ({label}); labels have letters, "
                    "digits, '-' and '_' only")
    hyphened = next((label for label in labels if label.startswith("-") or label.endswith("-")), "")
    if hyphened:
        return f"no domain has a label starting or ending with '-' ({hyphened})"
    return ""


def _length_problem(name: str, labels: list[str]) -> str:
    """Why `name` is longer than the DNS holds, by a label or as a whole."""
    longest = max(labels, key=len)
    if len(longest) > MAX_LABEL:
        return (f"a label of {len(longest)} characters ({longest[:20]}...); a domain's labels "
                f"have at most {MAX_LABEL}")
    if len(name) > MAX_NAME:
        return f"a name of {len(name)} characters; a domain has at most {MAX_NAME}"
    return ""


def _top_level_problem(name: str, top: str) -> str:
    """Why `top` is no top-level domain: they are letters (or xn-- A-labels) of two or more."""
    if top.isdigit():
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return f"no domain ends in a number ({top})"
        return "an IP address, not a domain name"
    if len(top) < 2 or "_" in top:
        return f"no top-level domain is one letter or has '_' ({top})"
    return ""


@lru_cache(maxsize=4096)
def ascii_address(value: str) -> str:
    """An address (`jörg@bücher.example`), `@domain` or bare domain as compared: lower-cased, its
    domain in ASCII form (`ascii_domain`). The local part is kept as written but for case, which
    Postfix folds too (local(8): "folded to lower case"; its lookup tables ignore case): any
    other mapping of it is the receiving server's, and none is safe to assume. Cached: a search
    the index cannot narrow compares every stored recipient in this form."""
    local, at, domain = value.strip().lower().rpartition("@")
    return f"{local}{at}{ascii_domain(domain)}"


# Local parts Postfix never cuts (see `Subaddressing`); double-bounce is double_bounce_sender's
# default, the only name of it mailsift can know.
NEVER_CUT = frozenset({"mailer-daemon", "postmaster", "double-bounce"})


@dataclass(frozen=True)
class Subaddressing:
    """Whose a recipient is under Postfix's recipient_delimiter (milter.recipient_delimiter):
    `delimiter`, and the `mailboxes` that are their own even where it cuts them (every web
    user's address, in `ascii_address` form).

    The rule is Postfix's (postconf(5), recipient_delimiter, Postfix 3.7): the delimiter is a
    set of characters, and "an email address localpart or user name is separated from its
    extension by the first character that matches the recipient_delimiter set", so with "+-"
    jane-doe+x@ is jane@'s; "with recipient_delimiter = +, the software tries
    user+foo@example.com before trying user@example.com". It "is not applied to the
    mailer-daemon address, the postmaster address, or the double-bounce address" (by its
    default name) and, with '-' in the set (owner_request_special = yes, the default), not to
    local parts with the "owner-" prefix or the "-request" suffix. Postfix's split_addr also
    leaves a local part that starts with the delimiter whole (+jane@ is its own: the cut would
    leave nothing) and cuts jane+@ to jane@. Here, a quoted local part ("j doe+x"@) stays whole
    too: cut inside its quotes it would be no address, and no one's is the safe guess.

    Postfix tries the whole address first, and delivers to a mailbox of that name when there is
    one: with "-" in the set, mail to anne-marie@ is Anne's only where no anne-marie mailbox
    exists. mailsift cannot see Postfix's mailboxes; the addresses of its web users are the
    ones it knows, and those stay their own. Any other is cut."""

    delimiter: str = ""
    mailboxes: frozenset[str] = frozenset()

    def forms(self, address: str) -> tuple[str, ...]:
        """The forms `address` is looked up under, the most specific first: as compared
        (`ascii_address`), then, when the delimiter cuts it, its owner's (jane+shop@example.com:
        jane@example.com). Every per-recipient decision goes by these, in this order, as
        Postfix's lookups do: a policy or list naming jane+shop@ comes before one naming jane@,
        the quarantine shows the mail to both, per-recipient Bayes uses the owner's store."""
        compared = ascii_address(address)
        local, at, domain = compared.rpartition("@")
        if not at or compared in self.mailboxes:
            return (compared,)
        owner = self._owner(local)
        return (compared,) if owner == local else (compared, f"{owner}@{domain}")

    def _owner(self, local: str) -> str:
        """`local` (lower-cased) cut before the first character of the delimiter, or whole
        where Postfix leaves it whole (see above)."""
        if not self.delimiter or local in NEVER_CUT or local.startswith('"'):
            return local
        if "-" in self.delimiter and (local.startswith("owner-") or (
                len(local) > len("-request") and local.endswith("-request"))):
            return local
        cut = next((i for i, letter in enumerate(local) if letter in self.delimiter), -1)
        return local[:cut] if cut > 0 else local


NO_SUBADDRESSES = Subaddressing()  # Postfix's default, an empty recipient_delimiter


def unicode_address(value: str) -> str:
    """`value` (as `ascii_address` makes it) with its domain in U-labels, as its people write it
    and want to read it; a domain without A-labels, or one that does not decode, as it is."""
    local, at, domain = value.rpartition("@")
    if "xn--" not in domain or "\\" in domain:  # from_text would read the escapes: see ascii_domain
        return value
    try:
        return f"{local}{at}{dns.name.from_text(domain).to_unicode(omit_final_dot=True)}"
    except (dns.exception.DNSException, UnicodeError):
        return value
