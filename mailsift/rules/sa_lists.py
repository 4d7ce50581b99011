"""SpamAssassin's site-wide welcome and block list lines, as entries of mailsift's site lists.

A site migrating from SpamAssassin keeps dozens of partners, banks and suppliers in its
local.cf as `whitelist_from` (`welcomelist_from` since 4.0) and friends, and known bad senders as
`blacklist_from`; read as unsupported settings, they were lost at the move. Each becomes an entry
of the site's lists (sitelists.py), which hold an address or a domain covering its subdomains:

- `user@domain` is that address; `*@domain` and `*@*.domain` are the domain. Both globs become
  the domain with its subdomains, one entry covering a little more than either glob: subdomains
  of a welcomed domain still prove themselves by their own SPF or DKIM, and a bad sender's
  subdomains are as bad.
- Any other glob (a `*` within a name, a `?`, a wildcard local part of one address) is not
  translated: `configtest` names the line and what to write instead, as a partial translation
  would welcome or block senders the site never named.

Every welcome entry is confirmed by SPF or DKIM before it counts (sender_proof.py), whichever
line wrote it. For `whitelist_from_dkim` and `whitelist_auth` that is what SpamAssassin does too;
`whitelist_from_rcvd ADDR HOST` checked the relay's reverse DNS instead, which the sender's SPF
record vouches for more precisely. A plain `whitelist_from` was believed unproven by SpamAssassin,
which its own documentation warns spammers exploit; a migrated list of banks must not let every
forged bank mail through, so it is confirmed too, and a partner whose mail fails both proofs
shows as SITE_WELCOME_UNVERIFIED in the report instead of losing its welcome in silence.
"""

from __future__ import annotations

import re

from mailsift.network.dmarc import aligned
from mailsift.quarantine.model import list_entry

WELCOME, BLOCK = "welcome", "block"
_WELCOME_FORMS = ("from", "auth", "from_spf", "from_dkim", "from_rcvd")
# directive -> which list it adds to; its `un` form removes from that list
ADDING: dict[str, str] = {
    **{f"{name}_{form}": WELCOME for name in ("whitelist", "welcomelist") for form in _WELCOME_FORMS},
    **{f"{name}_from": BLOCK for name in ("blacklist", "blocklist")},
}
REMOVING: dict[str, str] = {f"un{directive}": kind for directive, kind in ADDING.items()}
# directive -> its family in SpamAssassin (Mail::SpamAssassin::Conf, its SPF and DKIM plugins):
# a `un` line takes back what lines of its own family added, never another's, so
# `unwhitelist_from x@y` leaves a `whitelist_auth x@y`. Old and new names are one family.
_ADDING_FAMILY = {directive: f"{kind}_{directive.partition('_')[2]}" for directive, kind in ADDING.items()}
FAMILY: dict[str, str] = {**_ADDING_FAMILY,
                          **{f"un{directive}": family for directive, family in _ADDING_FAMILY.items()}}
# Lines whose first word alone is an address and the second a host or signing domain.
_ONE_ADDRESS = ("_from_dkim", "_from_rcvd")
_WHOLE_DOMAIN = re.compile(r"\*@(?:\*\.)?(?P<domain>[^*?@]+)")


class Untranslatable(ValueError):
    """A glob mailsift's lists cannot hold; the text says what to write instead."""


def addresses(directive: str, args: str) -> list[str]:
    """The globs a list line names: every word, or for `*_from_dkim` and `*_from_rcvd` lines and
    their `un` forms, the first (the second names the signer or the relay's host, which read as
    a glob got a wrong configtest note)."""
    words = args.split()
    return words[:1] if directive.endswith(_ONE_ADDRESS) else words


def held_as(directive: str, args: str, glob: str) -> tuple[str, str]:
    """What a list line holds its entry by, which only a `un` line naming the same takes back:
    its family, and the glob as written (case aside: `unwhitelist_from *@*.x.example` leaves a
    `whitelist_from *@x.example`, though both are the entry x.example), with a `_from_dkim`
    line's signing domain, which SpamAssassin's `un` line must repeat."""
    family = FAMILY[directive]
    signer = args.lower().split()[1:2] if family.endswith("_dkim") else []
    return family, " ".join([glob.strip().lower(), *signer])


def family_lines(directive: str) -> str:
    """The adding lines of `directive`'s family, old name first: 'whitelist_from/welcomelist_from'
    for `unwelcomelist_from`, what an administrator searches local.cf for."""
    return "/".join(line for line in ADDING if FAMILY[line] == FAMILY[directive])


def entry_of(glob: str) -> str:
    """The site list entry a SpamAssassin glob means (see above); Untranslatable otherwise."""
    glob = glob.strip().lower()
    whole = _WHOLE_DOMAIN.fullmatch(glob)
    text = whole["domain"] if whole else glob
    if "*" in text or "?" in text or "@" not in glob:
        raise Untranslatable(_instead(glob))
    try:
        return list_entry(text)
    except ValueError as exc:  # its text says why no sender matches it, and what to write
        raise Untranslatable(f"{exc}; not taken") from None


def _instead(glob: str) -> str:
    domain = glob.rpartition("@")[2]
    if "@" not in glob:
        return "not an address glob (user@domain, *@domain); not taken"
    if domain.strip("*.") == "" or domain == "*":
        return "would cover every sender; not taken: name the domains (*@domain)"
    if "*" in domain or "?" in domain:
        return ("a wildcard within a domain name is not taken: site lists hold an address or a "
                "domain with its subdomains; write *@DOMAIN for each domain meant")
    return (f"a partial wildcard is not taken: site lists hold an address or a domain with its "
            f"subdomains; write each address, or *@{domain} for all of {domain}")


def foreign_signer(directive: str, args: str, entry: str) -> str:
    """For `whitelist_from_dkim ADDR SIGNER`: SIGNER when it is not the sender's own domain (an
    email service signing for it), whose signature alone does not confirm the entry; else ''."""
    words = args.split()
    if not directive.endswith("_from_dkim") or len(words) < 2:
        return ""
    try:
        signer = list_entry(words[1])
    except ValueError:
        return words[1]
    return "" if aligned(signer, entry.rpartition("@")[2], strict=False) else signer
