"""The sender's domains: can they receive mail, do they protect themselves, and does From deceive?

A domain that does not exist, or that has neither MX nor address records, cannot take a reply or a
bounce: real senders do not use one. A From domain publishing neither SPF nor DMARC is easy to
forge, which is worth a little. The remaining signs need no DNS: replies steered away from a
free-mail From address (the classic advance-fee set-up; mailing lists, which point Reply-To at
themselves, excepted), a display name that names one of our domains ("IT Service example.org
<x@elsewhere>"), and a From domain that imitates one of ours.
"""

from __future__ import annotations

from mailsift.network.confusables import imitated
from mailsift.network.dmarc import DmarcRecord
from mailsift.network.identities import Identities, within_domains
from mailsift.network.resolver import Answer, Lookups, Outcome

# Free-mail providers whose addresses anyone can get in a minute; kept short on purpose: the big
# ones account for nearly all abuse of the Reply-To trick.
FREEMAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com",
    "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com",
    "msn.com", "aol.com", "icloud.com", "me.com", "mail.com", "gmx.com", "gmx.net", "gmx.de",
    "web.de", "yandex.com", "yandex.ru", "mail.ru", "inbox.ru", "list.ru", "bk.ru", "rambler.ru",
    "protonmail.com", "proton.me", "zoho.com", "qq.com", "163.com", "126.com", "sina.com",
    "rediffmail.com", "libero.it", "laposte.net", "orange.fr", "t-online.de", "tutanota.com",
})


def sender_domains(ids: Identities) -> list[str]:
    return list(dict.fromkeys(d for d in (ids.mail_from_domain, ids.from_domain) if d))


async def check_domains(ids: Identities, lookups: Lookups) -> dict[str, str]:
    """sender.nxdomain / sender.no_mx for the envelope and From domains."""
    findings: dict[str, str] = {}
    for domain in sender_domains(ids):
        mx, a, aaaa = await lookups.query_all([(domain, "MX"), (domain, "A"), (domain, "AAAA")])
        if any(answer.unknown for answer in (mx, a, aaaa)):
            continue
        if mx.outcome == Outcome.NXDOMAIN:
            findings.setdefault("sender.nxdomain", f"{domain} does not exist")
        elif not _mail_hosts(mx) and not a.records and not aaaa.records:
            findings.setdefault("sender.no_mx", f"{domain} has no MX and no address")
    return findings


def _mail_hosts(mx: Answer) -> list[str]:
    """MX hosts, leaving out the null MX ('0 .', RFC 7505) that says "no mail here"."""
    return [r for r in mx.records if r.partition(" ")[2] not in ("", ".")]


def weak_domain(ids: Identities, dmarc: DmarcRecord | Answer | None, txt: Answer) -> dict[str, str]:
    """sender.weak: the From domain exists but has neither an SPF record (`txt`) nor DMARC."""
    if not ids.from_domain or dmarc is not None or not txt.exists:
        return {}
    if any(r.lower().startswith("v=spf1") for r in txt.records):
        return {}
    return {"sender.weak": f"{ids.from_domain} publishes neither SPF nor DMARC"}


def check_from(ids: Identities, own_domains: list[str]) -> dict[str, str]:
    """from.freemail_reply_to / from.name_own_domain / from.lookalike; no DNS needed."""
    findings = {}
    other = [d for d in ids.reply_to_domains if d != ids.from_domain]
    if ids.from_domain in FREEMAIL and other and not ids.via_list:
        findings["from.freemail_reply_to"] = f"From {ids.from_domain}, Reply-To {other[0]}"
    if not within_domains(ids.from_domain, own_domains):
        name = ids.from_name.lower()
        claimed = next((d for d in own_domains if d in name), None)
        if claimed is not None:
            findings["from.name_own_domain"] = f"{ids.from_name!r} <{ids.from_address}>"
    copied = imitated(ids.from_domain, own_domains)
    if copied is not None:
        findings["from.lookalike"] = f"{ids.from_domain} imitates {copied}"
    return findings
