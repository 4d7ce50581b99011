"""Domains a message names without a link: `cheap-meds.example`, `orders@cheap-meds.example`.

Spam that writes its domain as plain text (a reader copies it into the browser, or replies to the
address) escaped every domain block list, because only links were looked up. The names found here
go to the domain lists only, after the link domains: `msg.uris`, the `uri` rules and the Bayes
tokens stay links only, so nothing changes with the network checks off.

A dotted word is a host name only when the Public Suffix List knows its suffix and there is a
registrable part before it (the PSL copy of `mailsift.analysis.uris`, where unknown suffixes do
not count): `file.txt`, `e.g`, `v1.2.3` and `Mr.Smith` are not. Why not a library: linkify-it-py
recognises bare names only for a short built-in list of top-level domains (the spammers' .top or
.xyz are not on it), urlextract keeps its own TLD list refreshed from the network; the PSL is
already here and is what the lists themselves are keyed on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailsift.analysis.uris import host_info
from mailsift.network.resolver import encodable

# Letters and digits (any script), hyphens only inside. Possessive, since a shorter run can
# never be followed by what ends a name: half the time on the corpus (61 against 118 us/msg).
LABEL = r"[^\W_]++(?:-++[^\W_]++)*+"
# Not inside a longer word, dotted run or path (a link's path is not a host, and its host is
# already a link); '@' may come before (an address's domain) but not after (its local part).
WRITTEN_HOST = re.compile(rf"(?<![\w.\-/\\]){LABEL}(?:\.{LABEL})++(?!\.?[\w@-])")
# Top-level domains that read as file names far more often than as sites in a letter
# ("see invoice.zip"), and that block lists do list: the file would score as a listed domain.
FILE_NAME_TLDS = frozenset({"zip", "mov"})


def written_domains(text: str) -> Iterator[str]:
    """Registrable domains of the host names and address domains written in `text`, in text
    order, each once, lower-case Unicode as link domains are; lazy, so that a caller who has
    enough stops the scan."""
    seen: set[str] = set()
    for match in WRITTEN_HOST.finditer(text):
        domain = host_info(match.group()).domain
        if domain and domain not in seen and _lookupable(domain):
            seen.add(domain)
            yield domain


def _lookupable(domain: str) -> bool:
    """Not a file name, and a name the resolver can ask about (`encodable`)."""
    return domain.rpartition(".")[2] not in FILE_NAME_TLDS and encodable(domain)
