"""The test zones: every name, address and record the network tests rely on, in one place.

Addresses are from the documentation ranges (RFC 5737): they stand for outside hosts and are only
ever data in messages and records. The DNS server itself listens on loopback. Names live under
`.test` (RFC 2606); link domains are example.com / example.org because the Public Suffix List
knows those and gives them a registrable domain, as real links have.
"""

from __future__ import annotations

import base64

from mailsift.network.resolver import reverse_name

OWN_DOMAIN = "our.test"

# Connecting hosts
GOOD_IP = "192.0.2.10"  # mail.shop.test, forward-confirmed; allowed to send for shop.test
LISTED_IP = "192.0.2.66"  # on the block list; PTR mail.listed.test, confirmed
NO_PTR_IP = "192.0.2.20"
UNCONFIRMED_IP = "192.0.2.30"  # PTR fake.shop.test, whose address is another one
DYNAMIC_IP = "192.0.2.40"  # PTR 40-2-0-192.dsl.isp.test (confirmed, but a consumer line)
ALLOWED_IP = "192.0.2.50"  # on the allow list; mail.partner.test, confirmed
# IPv6 hosts (RFC 3849 documentation range)
GOOD_IP6 = "2001:db8:1::25"  # mail6.six.test, forward-confirmed; allowed to send for six.test
LISTED_IP6 = "2001:db8:66::2"  # on the block list (nibble name); PTR mail6.listed.test, confirmed
NO_PTR_IP6 = "2001:db8:20::5"

# DNS lists
BLOCK_ZONE = "bl.test"
ALLOW_ZONE = "allow.test"
URI_ZONE = "uribl.test"
REFUSING_ZONE = "refusing.test"
EVERYTHING_ZONE = "everything.test"  # a dead list that answers 127.0.0.2 for every name
BLOCKED_URI_ZONE = "blocked-uribl.test"  # a URI list refusing us with 127.0.0.1 for every name
# IPv4 test points as they should be, but 127.0.0.2 for the never-listed IPv6 one: a zone that
# answers every nibble name
EVERY_IP6_ZONE = "every-ip6.test"
# A commercial list's private zone, listing only under its access key (KEY.ZONE, as Spamhaus DQS
# and Abusix serve theirs): the same names without the key do not exist
ACCESS_KEY = "k3yofthetestsnot4reports"
KEYED_ZONE = "keyed-bl.test"
KEYED_DEAD_ZONE = "keyed-everything.test"  # lists every name under the key: a dead list
# A Spamhaus DQS zone, served here for a key written in it the old way (KEY.zen.dq.spamhaus.net)
DQS_ZONE = "zen.dq.spamhaus.net"
# RFC 5782's IPv6 test points ::FFFF:7F00:2 (listed) and ::FFFF:7F00:1 (never), as nibble names
IP6_TEST_POINT = "2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20
IP6_NEVER_POINT = "1.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20
LISTED_URI_DOMAIN = "example.com"  # on the URI list
CLEAN_URI_DOMAIN = "example.org"
WRITTEN_URI_DOMAIN = "example.net"  # on the URI list; the tests write it without a link
WRITTEN_IDN_DOMAIN = "bücher.de"  # on the URI list in its IDNA form

SELECTOR = "sel"
# DKIM keys under this name are forwarded to the silent server: a signer whose key never arrives
SILENT_KEYS = "_domainkey.slowkey.test"
# ARC sealers (RFC 8617): a forwarder the ARC tests list in network.arc_trusted_sealers, one they
# do not, and one that seals without ever being looked up (no key published)
TRUSTED_SEALER = "forwarder.test"
UNTRUSTED_SEALER = "relay.test"
UNLISTED_SEALER = "quiet.test"
# An internationalised sender domain (SMTPUTF8 mail writes it in U-labels, the DNS holds A-labels):
# SPF allows GOOD_IP, DMARC p=reject, the test DKIM key; all published under the A-label only
IDN_DOMAIN = "bücher.test"
IDN_ASCII = "xn--bcher-kva.test"
# A real public suffix of two labels, served here, for DMARC's organisational domain (PSL)
PSL_ZONE = "co.uk"
# A 512-bit RSA public key (openssl genpkey rsa_keygen_bits:512; the private half was not kept):
# too short to verify anything (RFC 8301 3.2)
SHORT_RSA_KEY = ("MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMSB26TUrtdX/cn3O504x6CcGkGz7m49HIbWerTdvkpJKBCT38P1Tig"
                 "Vzk6jjFbpiP3DEvZgNO/UzlkR9IXA7xUCAwEAAQ==")


def _unreadable(key: str) -> str:
    """The key with a length given to the NULL parameter of its algorithm (which has none)."""
    der = bytearray(base64.b64decode(key))
    der[der.index(b"\x05\x00") + 1] = 1
    return base64.b64encode(der).decode()


def records(dkim_key: str, ed25519_key: str) -> list[str]:
    """dnsmasq configuration lines; `dkim_key` is the base64 public key for sel._domainkey.shop.test,
    `ed25519_key` the one for sel._domainkey.ed.test (RFC 8463)."""
    return [*_base_records(dkim_key), *_spf_edges(), *_dmarc_edges(), *_dkim_edges(dkim_key, ed25519_key),
            *_arc_sealers(dkim_key), *_idn_sender(dkim_key)]


def _base_records(dkim_key: str) -> list[str]:
    return [
        # hosts (host-record also publishes the matching PTR)
        f"host-record=mail.shop.test,{GOOD_IP}",
        f"host-record=mail.listed.test,{LISTED_IP}",
        f"host-record=40-2-0-192.dsl.isp.test,{DYNAMIC_IP}",
        f"host-record=mail.partner.test,{ALLOWED_IP}",
        "host-record=fake.shop.test,192.0.2.99",
        f"ptr-record={_ptr(UNCONFIRMED_IP)},fake.shop.test",
        # shop.test: SPF -all, DMARC reject with quarantine for subdomains, DKIM key, MX
        "mx-host=shop.test,mail.shop.test,10",
        f'txt-record=shop.test,"v=spf1 ip4:{GOOD_IP} -all"',
        '''txt-record=_dmarc.shop.test,"v=DMARC1; p=reject; sp=quarantine"''',
        f'txt-record={SELECTOR}._domainkey.shop.test,"v=DKIM1; k=rsa; p={dkim_key}"',
        # the same key, unreadable in a way dkimpy's reader fails on with an AssertionError
        f'txt-record={SELECTOR}._domainkey.badkey.test,"v=DKIM1; k=rsa; p={_unreadable(dkim_key)}"',
        f'txt-record=bounces.shop.test,"v=spf1 ip4:{GOOD_IP} -all"',
        "mx-host=sub.shop.test,mail.shop.test,10",
        # other SPF outcomes, DMARC policies
        "mx-host=soft.test,mail.shop.test,10",
        f'txt-record=soft.test,"v=spf1 ip4:{GOOD_IP} ~all"',
        '''txt-record=_dmarc.soft.test,"v=DMARC1; p=quarantine"''',
        "mx-host=neutral.test,mail.shop.test,10",
        'txt-record=neutral.test,"v=spf1 ?all"',
        '''txt-record=_dmarc.neutral.test,"v=DMARC1; p=none"''',
        "mx-host=broken.test,mail.shop.test,10",
        'txt-record=broken.test,"v=spf1 ip4:192.0.2.0/24 frobnicate:x -all"',
        "mx-host=nospf.test,mail.shop.test,10",
        # strict alignment: the bounce domain passes SPF but is not the From domain
        "mx-host=strict.test,mail.shop.test,10",
        '''txt-record=_dmarc.strict.test,"v=DMARC1; p=reject; aspf=s; adkim=s"''',
        f'txt-record=bounces.strict.test,"v=spf1 ip4:{GOOD_IP} -all"',
        # a domain that exists but takes no mail; SPF delegated to a zone that never answers
        'txt-record=nomx.test,"some text, no mail"',
        "mx-host=slow.test,mail.shop.test,10",
        'txt-record=slow.test,"v=spf1 include:spf.never.test -all"',
        # SPF delegated to a zone this server refuses: a SERVFAIL for the resolver
        "mx-host=tempfail.test,mail.shop.test,10",
        'txt-record=tempfail.test,"v=spf1 include:spf.unserved.example -all"',
        # our own domain
        f"mx-host={OWN_DOMAIN},mail.{OWN_DOMAIN},10",
        f"host-record=mail.{OWN_DOMAIN},192.0.2.1",
        # lists
        f"address=/{_list_name(LISTED_IP, BLOCK_ZONE)}/127.0.0.2",
        f"address=/{_list_name(ALLOWED_IP, ALLOW_ZONE)}/127.0.0.2",
        f"host-record=mail6.listed.test,{LISTED_IP6}",
        f"address=/{reverse_name(LISTED_IP6, BLOCK_ZONE)}/127.0.0.2",
        f"address=/{LISTED_URI_DOMAIN}.{URI_ZONE}/127.0.0.2",
        f"address=/{WRITTEN_URI_DOMAIN}.{URI_ZONE}/127.0.0.2",
        f"address=/{WRITTEN_IDN_DOMAIN.encode('idna').decode()}.{URI_ZONE}/127.0.0.2",
        # RFC 5782 test points (127.0.0.2, the name TEST), which `mailsift configtest` asks
        f"address=/{_list_name('127.0.0.2', BLOCK_ZONE)}/127.0.0.2",
        f"address=/{_list_name('127.0.0.2', ALLOW_ZONE)}/127.0.0.2",
        f"address=/{IP6_TEST_POINT}.{BLOCK_ZONE}/127.0.0.2",
        f"address=/{_list_name('127.0.0.2', EVERY_IP6_ZONE)}/127.0.0.2",
        f"address=/{IP6_NEVER_POINT}.{EVERY_IP6_ZONE}/127.0.0.2",
        f"address=/{reverse_name(LISTED_IP6, EVERY_IP6_ZONE)}/127.0.0.2",
        f"address=/{_list_name(LISTED_IP, EVERY_IP6_ZONE)}/127.0.0.2",
        f"address=/test.{URI_ZONE}/127.0.0.2",
        # a list that refuses our resolver, as public lists answer queries from big open resolvers
        f"address=/{_list_name('127.0.0.2', REFUSING_ZONE)}/127.255.255.254",
        f"address=/{_list_name(LISTED_IP, REFUSING_ZONE)}/127.255.255.254",
        # address=/ZONE/ answers for the zone and every name under it: a list that lists the world
        f"address=/{EVERYTHING_ZONE}/127.0.0.2",
        f"address=/{BLOCKED_URI_ZONE}/127.0.0.1",
        # private zones, under the access key only
        *(f"address=/{_list_name(ip, f'{ACCESS_KEY}.{zone}')}/127.0.0.2"
          for ip in (LISTED_IP, "127.0.0.2") for zone in (KEYED_ZONE, DQS_ZONE)),
        f"address=/{ACCESS_KEY}.{KEYED_DEAD_ZONE}/127.0.0.2",
    ]


def _spf_edges() -> list[str]:
    """SPF records as real senders write them, and the limits of RFC 7208 section 4.6.4."""
    hosts = " ".join(["a:mail.shop.test"] * 11)  # 11 terms that query DNS: one too many
    return [
        'txt-record=incl.test,"v=spf1 include:nospf.test -all"',  # include of a domain without SPF
        f'txt-record=many.test,"v=spf1 {hosts} -all"',
        'txt-record=void.test,"v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ?all"',
        'txt-record=redir.test,"v=spf1 redirect=shop.test"',
        'txt-record=redirnone.test,"v=spf1 redirect=nospf.test"',
        'txt-record=macro.test,"v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"',
        f"address=/{_reversed(GOOD_IP)}.tom._spf.macro.test/127.0.0.2",
        'txt-record=six.test,"v=spf1 a:mail6.six.test mx -all"',
        "host-record=mail6.six.test,2001:db8:1::25",
        "mx-host=six.test,mx6.six.test,10",
        "host-record=mx6.six.test,2001:db8:2::25",
        # one record in two strings (RFC 7208 3.3: joined without a space); .66 only in the second
        'txt-record=split.test,"v=spf1 ip4:192.0.2.0/28 ","ip4:192.0.2.64/28 -all"',
        f'txt-record=explained.test,"v=spf1 ip4:{GOOD_IP} -all exp=why.never.test"',
    ]


def _dmarc_edges() -> list[str]:
    """DMARC records with pct= and t=, several records, syntax slips, a temperror, a real public
    suffix."""
    return [
        "mx-host=pct.test,mail.shop.test,10",
        'txt-record=_dmarc.pct.test,"v=DMARC1; p=reject; pct=0"',
        "mx-host=half.test,mail.shop.test,10",
        'txt-record=_dmarc.half.test,"v=DMARC1; p=quarantine; pct=50"',
        "mx-host=twice.shop.test,mail.shop.test,10",
        'txt-record=_dmarc.twice.shop.test,"v=DMARC1; p=none"',
        'txt-record=_dmarc.twice.shop.test,"v=DMARC1; p=reject"',
        "mx-host=typo.test,mail.shop.test,10",
        'txt-record=_dmarc.typo.test,"v=DMARC1 p=reject"',
        "mx-host=extra.test,mail.shop.test,10",
        'txt-record=_dmarc.extra.test,"v=DMARC1; p=reject; fo=1; np=reject; future=yes"',
        "mx-host=badp.test,mail.shop.test,10",
        'txt-record=_dmarc.badp.test,"v=DMARC1; p=rejected"',
        "mx-host=badprua.test,mail.shop.test,10",
        'txt-record=_dmarc.badprua.test,"v=DMARC1; p=rejected; rua=mailto:dmarc@badprua.test"',
        'txt-record=_dmarc.slow.test,"v=DMARC1; p=reject"',
        "mx-host=slowkey.test,mail.shop.test,10",
        'txt-record=slowkey.test,"v=spf1 -all"',
        'txt-record=_dmarc.slowkey.test,"v=DMARC1; p=reject"',
        f"mx-host=example.{PSL_ZONE},mail.shop.test,10",
        f'txt-record=_dmarc.example.{PSL_ZONE},"v=DMARC1; p=reject; sp=quarantine"',
        f'txt-record=mail.example.{PSL_ZONE},"v=spf1 ip4:{GOOD_IP} -all"',
        f'txt-record=other.{PSL_ZONE},"v=spf1 ip4:{GOOD_IP} -all"',
        # np= (RFC 9091): a bank monitoring itself and its subdomains, rejecting made-up ones;
        # news. has an MX, www. an address, spf. a TXT record alone (missing, for RFC 9091)
        "mx-host=bank.test,mail.shop.test,10",
        'txt-record=_dmarc.bank.test,"v=DMARC1; p=none; sp=none; np=reject"',
        "mx-host=news.bank.test,mail.shop.test,10",
        "host-record=www.bank.test,192.0.2.80",
        'txt-record=spf.bank.test,"v=spf1 -all"',
        'txt-record=_dmarc.npbad.test,"v=DMARC1; p=none; np=rejected"',
        'txt-record=_dmarc.nppct.test,"v=DMARC1; p=none; np=reject; pct=0"',
        # testing mode (RFC 9989 t=y), alone, for subdomains, and beside an RFC 7489 pct=
        "mx-host=trial.test,mail.shop.test,10",
        'txt-record=_dmarc.trial.test,"v=DMARC1; p=reject; t=y"',
        "mx-host=trialq.test,mail.shop.test,10",
        'txt-record=_dmarc.trialq.test,"v=DMARC1; p=quarantine; t=y"',
        'txt-record=_dmarc.trialsub.test,"v=DMARC1; p=none; sp=reject; t=y"',
        "mx-host=enforced.test,mail.shop.test,10",
        'txt-record=_dmarc.enforced.test,"v=DMARC1; p=reject; pct=0; t=n"',
        "mx-host=trialpct.test,mail.shop.test,10",
        'txt-record=_dmarc.trialpct.test,"v=DMARC1; p=reject; pct=0; t=y"',
        "mx-host=trialbad.test,mail.shop.test,10",
        'txt-record=_dmarc.trialbad.test,"v=DMARC1; p=reject; t=yes; pct=0"',
        # validity by RFC 9989: no p= (p=none), an np= that is no policy (the record is p=none
        # with a reporting URI, no DMARC without), a rua= naming no URI
        "mx-host=nop.test,mail.shop.test,10",
        'txt-record=_dmarc.nop.test,"v=DMARC1; sp=quarantine"',
        "mx-host=npbadreject.test,mail.shop.test,10",
        'txt-record=_dmarc.npbadreject.test,"v=DMARC1; p=reject; np=rejected"',
        "mx-host=npbadrua.test,mail.shop.test,10",
        'txt-record=_dmarc.npbadrua.test,"v=DMARC1; p=reject; np=rejected; rua=mailto:d@npbadrua.test"',
        "mx-host=badrua.test,mail.shop.test,10",
        'txt-record=_dmarc.badrua.test,"v=DMARC1; p=rejected; rua=dmarc@badrua.test"',
        "mx-host=ruasize.test,mail.shop.test,10",
        'txt-record=_dmarc.ruasize.test,"v=DMARC1; p=rejected; rua=d@ruasize.test, mailto:d@x.test!1m"',
        # a tag named twice (RFC 6376 3.2: the whole record is invalid)
        "mx-host=dup.test,mail.shop.test,10",
        'txt-record=_dmarc.dup.test,"v=DMARC1; p=none; p=reject"',
        "mx-host=dup.shop.test,mail.shop.test,10",
        'txt-record=_dmarc.dup.shop.test,"v=DMARC1; p=none; p=none"',
        # the version's value in lower case (no DMARC record), its name in capitals (one)
        "mx-host=lowerv.test,mail.shop.test,10",
        'txt-record=_dmarc.lowerv.test,"v=dmarc1; p=reject"',
        "mx-host=lowerv.shop.test,mail.shop.test,10",
        'txt-record=_dmarc.lowerv.shop.test,"v=dmarc1; p=none"',
        "mx-host=upperv.test,mail.shop.test,10",
        'txt-record=_dmarc.upperv.test,"V=DMARC1; P=Reject"',
    ]


def _dkim_edges(dkim_key: str, ed25519_key: str) -> list[str]:
    """Key records in testing mode (t=y), revoked (empty p=), an ed25519 key (RFC 8463), and keys
    nobody can use: p= not base64, p= base64 but no key, an unknown k=, an RSA key of 512 bits, no
    p= tag but a pp= typo, p= twice, an empty tag (;;). And the test key where it refuses mail
    (s=, RFC 6376 3.6.1), the signature's sha256 (h=sha1) or sha1 (h=sha256), and where s= names
    mail among other services or in capitals; the test keys with k= in capitals."""
    return [
        f'txt-record={SELECTOR}._domainkey.notbase64.test,"v=DKIM1; k=rsa; p=!!not-base64!!"',
        f'txt-record={SELECTOR}._domainkey.notakey.test,"v=DKIM1; k=rsa; p=AAAA"',
        f'txt-record={SELECTOR}._domainkey.unknownalg.test,"v=DKIM1; k=foo; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.shortkey.test,"v=DKIM1; k=rsa; p={SHORT_RSA_KEY}"',
        f'txt-record={SELECTOR}._domainkey.typokey.test,"v=DKIM1; k=rsa; pp={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.twicekey.test,"v=DKIM1; k=rsa; p={dkim_key}; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.semicolons.test,"v=DKIM1; k=rsa;; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.tlsrptkey.test,"v=DKIM1; k=rsa; s=tlsrpt; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.chatkey.test,"v=DKIM1; k=rsa; s=chat:web; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.sha1key.test,"v=DKIM1; k=rsa; h=sha1; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.sha256key.test,"v=DKIM1; k=rsa; h=sha256; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.mailtls.test,"v=DKIM1; k=rsa; s=email:tlsrpt; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.mailupper.test,"v=DKIM1; k=rsa; s=Email; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.rsaupper.test,"v=DKIM1; k=RSA; p={dkim_key}"',
        f'txt-record={SELECTOR}._domainkey.edupper.test,"v=DKIM1; k=Ed25519; p={ed25519_key}"',
        "mx-host=testing.test,mail.shop.test,10",
        f'txt-record={SELECTOR}._domainkey.testing.test,"v=DKIM1; k=rsa; t=y; p={dkim_key}"',
        "mx-host=testingupper.test,mail.shop.test,10",  # t= flags compare in either case
        f'txt-record={SELECTOR}._domainkey.testingupper.test,"v=DKIM1; k=rsa; t=Y; p={dkim_key}"',
        "mx-host=revoked.test,mail.shop.test,10",
        f'txt-record={SELECTOR}._domainkey.revoked.test,"v=DKIM1; k=rsa; p="',
        "mx-host=ed.test,mail.shop.test,10",
        f'txt-record={SELECTOR}._domainkey.ed.test,"v=DKIM1; k=ed25519; p={ed25519_key}"',
    ]


def _arc_sealers(dkim_key: str) -> list[str]:
    """ARC sealing keys (RFC 8617): a forwarder the ARC tests trust and one they do not. The sealer
    whose key never arrives is slowkey.test (SILENT_KEYS)."""
    return [f'txt-record={SELECTOR}._domainkey.{sealer},"v=DKIM1; k=rsa; p={dkim_key}"'
            for sealer in (TRUSTED_SEALER, UNTRUSTED_SEALER)]


def _idn_sender(dkim_key: str) -> list[str]:
    """IDN_DOMAIN as a DNS server holds it: in its A-label form (IDN_ASCII) alone."""
    return [
        f"mx-host={IDN_ASCII},mail.shop.test,10",
        f'txt-record={IDN_ASCII},"v=spf1 ip4:{GOOD_IP} -all"',
        f'txt-record=_dmarc.{IDN_ASCII},"v=DMARC1; p=reject"',
        f'txt-record={SELECTOR}._domainkey.{IDN_ASCII},"v=DKIM1; k=rsa; p={dkim_key}"',
    ]


def _reversed(ip: str) -> str:
    return ".".join(reversed(ip.split(".")))


def _ptr(ip: str) -> str:
    return f"{_reversed(ip)}.in-addr.arpa"


def _list_name(ip: str, zone: str) -> str:
    return f"{_reversed(ip)}.{zone}"
