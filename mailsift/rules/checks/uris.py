"""Links: where they really go, and how hard the message works to hide that.

Spam has to send the reader somewhere, and the tricks used to get a link past filters and
blocklists (bare IP addresses, shorteners, text that names one site while the link goes to
another, dozens of throw-away domains) are rare in mail people write to each other. Patterns on
the link text itself live in `shipped/30_uri.cf`.
"""

from __future__ import annotations

import ipaddress

from mailsift.rules.registry import CheckContext, CheckResult, DefaultRule, check

GROUP = "uri"

# Link shorteners: the destination is hidden until clicked and changes at will.
SHORTENERS = frozenset({
    "bit.ly", "bitly.com", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
    "cutt.ly", "tiny.cc", "shorturl.at", "rb.gy", "t.ly", "v.gd", "x.co", "snip.ly", "bl.ink",
    "s.id", "lnkd.in", "shorte.st", "adf.ly", "qr.net", "tr.im", "cli.gs", "u.to", "clck.ru",
    "surl.li", "short.io", "tiny.one", "urlz.fr", "kurzelinks.de", "makeashorterlink.com",
    "snipurl.com", "shrinkurl.us", "redirectme.to",
})


def _public_ip(host: str) -> bool:
    """Private, loopback and link-local addresses are intranet links, which ham uses all the time."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return False


@check("uri_ip_host",
       DefaultRule("URI_IP_HOST", 2.7, "Links to a bare public IP address", kind="uri", group=GROUP))
def uri_ip_host(ctx: CheckContext) -> CheckResult:
    """A site with a name does not link by number; throw-away servers and hijacked PCs do."""
    for uri in ctx.msg.uris:
        if uri.is_ip and _public_ip(uri.host):
            return uri.url[:60]
    return None


@check("uri_shortener",
       DefaultRule("URI_SHORTENER", 0.3, "Links through a URL shortener", kind="uri", group=GROUP))
def uri_shortener(ctx: CheckContext) -> CheckResult:
    """Shorteners hide the destination from the reader and from domain blocklists alike."""
    for uri in ctx.msg.uris:
        if uri.host in SHORTENERS or uri.domain in SHORTENERS:
            return uri.url[:60]
    return None


@check("uri_text_names_other_domain",
       DefaultRule("URI_TEXT_MISMATCH", 0.8, "Link text names another domain than the link goes to",
                   kind="uri", group=GROUP))
def uri_text_names_other_domain(ctx: CheckContext) -> CheckResult:
    """`<a href="http://evil.example">www.bank.example</a>`: the phisher's basic trick."""
    mismatches = ctx.msg.html.link_mismatches
    if not mismatches:
        return None
    text, target = mismatches[0]
    return f"{text[:40]} -> {target}"


@check("uri_many_domains",
       DefaultRule("URI_MANY_DOMAINS", 0.2, "Links to 12 or more different domains", args=(12,),
                   kind="uri", group=GROUP))
def uri_many_domains(ctx: CheckContext, minimum: int) -> CheckResult:
    """Many unrelated domains in one message spread the bet against domain blocklists."""
    domains = {u.domain for u in ctx.msg.uris if u.domain}
    return f"{len(domains)} domains" if len(domains) >= minimum else None
