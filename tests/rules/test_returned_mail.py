"""Bounces and auto-replies: backscatter of mail forged in our name scores, our own bounces never.

The messages are written here in the shapes real MTAs give them (Postfix, Exchange, qmail,
vacation), with example names: example.org is our domain, smtp.example.org the relay our users
send through, mx.example.org our MX; remote.example and example.net are other people's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.analysis.model import Envelope
from mailsift.analysis.parse import analyse
from mailsift.config import Config, ConfigError, NetworkConfig, RulesConfig, load_config
from mailsift.rules.checks.returned import returned_mail
from mailsift.rules.registry import CheckContext
from mailsift.scanner import Scanner
from tests.analysis.helpers import transfer_encoded
from tests.support.cpu_time import cpu_time

OURS = Config(network=NetworkConfig(outbound_relays=["smtp.example.org"]))
DEFAULT = Config()

# What our relay wrote when Jane sent her message: the hop that makes it ours.
OUR_ORIGINAL = """\
Received: from [192.0.2.10] (dsl-10.example.com [192.0.2.10])
\tby smtp.example.org (Postfix) with ESMTPSA id 4XyZ1q2r3s
\tfor <bob@remote.example>; Mon, 4 Mar 2024 09:12:01 +0100 (CET)
From: Jane Doe <jane@example.org>
To: bob@remote.example
Subject: Quarterly figures
Date: Mon, 4 Mar 2024 09:11:58 +0100
Message-ID: <a1b2c3d4-e5f6@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
"""

# Spam a bot sent straight to a stranger's server, with Jane's address in From.
FORGED_ORIGINAL = """\
Received: from pc-77.dsl.example.net (pc-77.dsl.example.net [198.51.100.77])
\tby mail.remote.example (Postfix) with SMTP id 9QwE8r7t6y
\tfor <nobody@remote.example>; Mon, 4 Mar 2024 03:40:12 +0100 (CET)
From: "Jane" <jane@example.org>
To: nobody@remote.example
Subject: Cheap watches, best prices
Date: Mon, 4 Mar 2024 03:40:09 +0100
Message-ID: <20240304034009.4412.qmail@pc-77>
"""

# The hop of our MX that handed the bounce to us (trusted under the inferred trust of a
# private address), as the delivered file shows it.
BOUNCE_RECEIVED = """\
Received: from mx.example.org (mx.example.org [10.0.0.25])
\tby imap.example.org (Postfix) with ESMTP id 7AbC; Mon, 4 Mar 2024 09:12:09 +0100
Received: from mail.remote.example (mail.remote.example [203.0.113.9])
\tby mx.example.org (Postfix) with ESMTPS id 6DeF; Mon, 4 Mar 2024 09:12:08 +0100
"""


def postfix_dsn(original: str, headers_only: bool = False, smtputf8: bool = False,
                encoding: str = "") -> bytes:
    """A Postfix "Undelivered Mail Returned to Sender" DSN carrying `original`; for mail sent
    with SMTPUTF8, the RFC 6533 types Postfix then writes, 8-bit. With an `encoding` (base64,
    quoted-printable) the enclosed message is sent in it, as some bouncers send it."""
    headers_type, message_type, status_type = (
        ("message/global-headers", "message/global", "message/global-delivery-status") if smtputf8 else
        ("text/rfc822-headers", "message/rfc822", "message/delivery-status"))
    enclosed = (f"Content-Description: Undelivered Message Headers\nContent-Type: {headers_type}\n"
                if headers_only else
                f"Content-Description: Undelivered Message\nContent-Type: {message_type}\n")
    if encoding or smtputf8:
        enclosed += f"Content-Transfer-Encoding: {encoding or '8bit'}\n"
    body = "" if headers_only else "\nHello Bob, the figures are attached.\n"
    if encoding:
        original, body = transfer_encoded(original + body, encoding), ""
    return f"""{BOUNCE_RECEIVED}Date: Mon, 4 Mar 2024 09:12:07 +0100 (CET)
From: MAILER-DAEMON@mail.remote.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: jane@example.org
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="5B2C41A0.1709539927/mail.remote.example"
Message-Id: <20240304081207.5B2C41A0@mail.remote.example>

This is a MIME-encapsulated message.

--5B2C41A0.1709539927/mail.remote.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<bob@remote.example>: user unknown

--5B2C41A0.1709539927/mail.remote.example
Content-Description: Delivery report
Content-Type: {status_type}

Reporting-MTA: dns; mail.remote.example
X-Postfix-Queue-ID: 5B2C41A0
Arrival-Date: Mon,  4 Mar 2024 09:12:02 +0100 (CET)

Final-Recipient: rfc822; bob@remote.example
Action: failed
Status: 5.1.1
Diagnostic-Code: X-Postfix; unknown user: "bob"

--5B2C41A0.1709539927/mail.remote.example
{enclosed}
{original}{body}
--5B2C41A0.1709539927/mail.remote.example--
""".encode()


def exchange_ndr(original: str) -> bytes:
    """An Exchange non-delivery report: HTML and text explanation, then the returned message."""
    return f"""{BOUNCE_RECEIVED}From: Microsoft Outlook <postmaster@remote.example>
To: <jane@example.org>
Date: Mon, 4 Mar 2024 08:12:07 +0000
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="b6a0c8f2-4f0e-4d6c-9b9a-1c2d3e4f5a6b"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c@EXCH01.remote.example>
Subject: Undeliverable: Cheap watches, best prices
Auto-Submitted: auto-replied
MIME-Version: 1.0

--b6a0c8f2-4f0e-4d6c-9b9a-1c2d3e4f5a6b
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff"

--0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff
Content-Type: text/plain; charset="us-ascii"

Your message to nobody@remote.example couldn't be delivered.
nobody wasn't found at remote.example.

--0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to nobody@remote.example couldn't be delivered.</p></body></html>

--0c1d2e3f-aaaa-bbbb-cccc-ddddeeeeffff--

--b6a0c8f2-4f0e-4d6c-9b9a-1c2d3e4f5a6b
Content-Type: message/delivery-status

Reporting-MTA: dns;EXCH01.remote.example
Received-From-MTA: dns;mail.remote.example
Arrival-Date: Mon, 4 Mar 2024 08:12:06 +0000

Final-Recipient: rfc822;nobody@remote.example
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--b6a0c8f2-4f0e-4d6c-9b9a-1c2d3e4f5a6b
Content-Type: message/rfc822

Received: from mail.remote.example (203.0.113.9) by EXCH01.remote.example
 (10.1.0.5) with Microsoft SMTP Server (version=TLS1_2) id 15.2.1118.40; Mon, 4 Mar 2024
 08:12:06 +0000
{original}
Buy now.

--b6a0c8f2-4f0e-4d6c-9b9a-1c2d3e4f5a6b--
""".encode()


def qmail_bounce(original: str, envelope: bool = False) -> bytes:
    """qmail's plain-text "failure notice": the original quoted after a marker line."""
    sender = "From: MAILER-DAEMON@mail.remote.example\n" if not envelope else "From: mail.remote.example\n"
    return f"""{BOUNCE_RECEIVED}Date: 4 Mar 2024 08:12:07 -0000
{sender}To: jane@example.org
Subject: failure notice

Hi. This is the qmail-send program at mail.remote.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@remote.example>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <jane@example.org>
{original}
Buy now.
""".encode()


def vacation(in_reply_to: str) -> bytes:
    return f"""{BOUNCE_RECEIVED}From: Bob <bob@remote.example>
To: jane@example.org
Subject: Out of office: Re: Quarterly figures
Date: Mon, 4 Mar 2024 09:12:07 +0100
Message-ID: <vac-1@remote.example>
In-Reply-To: {in_reply_to}
Auto-Submitted: auto-replied (vacation)
Precedence: bulk

I am away until 18 March and will read your message when I am back.
""".encode()


def verdict(raw: bytes, config: Config = OURS, envelope: Envelope | None = None) -> dict[str, object]:
    """What each verdict of the check says about the message (None: not hit)."""
    ctx = CheckContext(analyse(raw, config, envelope), config)
    return {name: returned_mail(ctx, name) for name in ("any", "ours", "foreign", "unjudged")}


def judged(raw: bytes, config: Config = OURS, envelope: Envelope | None = None) -> str:
    """The one verdict the check gives ('' when the message is no returned mail)."""
    hits = verdict(raw, config, envelope)
    named = [name for name in ("ours", "foreign", "unjudged") if hits[name]]
    assert len(named) <= 1 and bool(named) == bool(hits["any"]), hits
    return named[0] if named else ""


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(OURS)


def test_a_postfix_bounce_of_our_own_message_is_never_backscatter(scanner: Scanner) -> None:
    raw = postfix_dsn(OUR_ORIGINAL)
    assert judged(raw) == "ours"
    assert verdict(raw)["ours"] == "delivery report: the original went out by smtp.example.org"
    assert "RETURNED_NOT_OURS" not in scanner.scan(raw).rule_names


def test_a_bounce_of_spam_forged_in_our_name_is_backscatter(scanner: Scanner) -> None:
    raw = postfix_dsn(FORGED_ORIGINAL)
    assert judged(raw) == "foreign"
    hit = {h.name: h for h in scanner.scan(raw).hits}["RETURNED_NOT_OURS"]
    assert hit.score == 3.5
    assert hit.evidence == ("delivery report: the original passed 1 host(s), none of ours "
                            "(message/rfc822)")


def test_without_outbound_relays_a_forged_bounce_is_only_recognised() -> None:
    raw = postfix_dsn(FORGED_ORIGINAL)
    assert judged(raw, DEFAULT) == "unjudged"
    assert verdict(raw, DEFAULT)["unjudged"] == "delivery report: network.outbound_relays is not set"
    assert "RETURNED_NOT_OURS" not in Scanner(DEFAULT).scan(raw).rule_names


def test_an_exchange_ndr_of_forged_mail_is_backscatter_and_of_ours_is_not() -> None:
    assert judged(exchange_ndr(FORGED_ORIGINAL)) == "foreign"
    assert judged(exchange_ndr(OUR_ORIGINAL)) == "ours"


def test_a_bounce_carrying_only_the_original_headers_is_judged_by_them() -> None:
    assert judged(postfix_dsn(OUR_ORIGINAL, headers_only=True)) == "ours"
    assert judged(postfix_dsn(FORGED_ORIGINAL, headers_only=True)) == "foreign"
    assert "text/rfc822-headers" in str(verdict(postfix_dsn(FORGED_ORIGINAL, headers_only=True))["foreign"])


def test_headers_quoted_in_a_plain_text_bounce_are_the_original() -> None:
    assert judged(qmail_bounce(FORGED_ORIGINAL)) == "foreign"
    assert judged(qmail_bounce(OUR_ORIGINAL)) == "ours"


# Jane's message and the spam as SMTPUTF8 mail: a name, an address and a subject in UTF-8.
UTF8_OURS = (OUR_ORIGINAL.replace("Jane Doe <jane@example.org>", "Jörg Müller <jörg@example.org>")
             .replace("Quarterly figures", "Quartalszahlen für März"))
UTF8_FORGED = (FORGED_ORIGINAL.replace('"Jane" <jane@example.org>', '"Jörg" <jörg@example.org>')
               .replace("Cheap watches, best prices", "Günstige Uhren"))


@pytest.mark.parametrize("headers_only", [False, True], ids=["message/global", "message/global-headers"])
def test_a_bounce_of_smtputf8_mail_is_judged_by_its_original(headers_only: bool, scanner: Scanner) -> None:
    """RFC 6533: the bounce of mail sent with SMTPUTF8 carries it as message/global, or its
    headers as message/global-headers. Neither was read, so every such bounce was unjudged
    and backscatter of SMTPUTF8 spam forged in our name never scored."""
    forged = postfix_dsn(UTF8_FORGED, headers_only, smtputf8=True)
    assert judged(forged) == "foreign"
    found_in = "message/global-headers" if headers_only else "message/global"
    hit = {h.name: h for h in scanner.scan(forged).hits}["RETURNED_NOT_OURS"]
    assert hit.evidence == f"delivery report: the original passed 1 host(s), none of ours ({found_in})"
    assert judged(postfix_dsn(UTF8_OURS, headers_only, smtputf8=True)) == "ours"


@pytest.mark.parametrize(("report", "kind"), [("global-delivery-status", "delivery report"),
                                              ("global-disposition-notification", "read receipt")])
def test_an_rfc_6533_report_is_named_as_its_ascii_form_is(report: str, kind: str) -> None:
    """RFC 6533's report types for SMTPUTF8 mail are the delivery report and read receipt of
    RFC 6522 with UTF-8 allowed; the evidence named them "report (global-delivery-status)"."""
    raw = (postfix_dsn(UTF8_FORGED, smtputf8=True)
           .replace(b"report-type=delivery-status", f"report-type={report}".encode())
           .replace(b"message/global-delivery-status", f"message/{report}".encode()))
    assert verdict(raw)["foreign"] == f"{kind}: the original passed 1 host(s), none of ours (message/global)"


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
@pytest.mark.parametrize("smtputf8", [False, True], ids=["message/rfc822", "message/global"])
def test_a_bounce_enclosing_its_original_encoded_is_judged_by_it(smtputf8: bool, encoding: str,
                                                                scanner: Scanner) -> None:
    """Some bouncers send the original base64 or quoted-printable encoded: RFC 6532 allows it
    for message/global, RFC 2046 5.2.1 forbids it for message/rfc822, and either way the
    encoded text was read as a message without headers, so the bounce was unjudged, or judged
    by a Received field a soft line break had cut. The original's Received fields are written
    on one line here, longer than a quoted-printable line may be, as many MTAs write them."""
    forged, ours = ((UTF8_FORGED, UTF8_OURS) if smtputf8 else (FORGED_ORIGINAL, OUR_ORIGINAL))
    found_in = "message/global" if smtputf8 else "message/rfc822"
    raw = postfix_dsn(forged.replace("\n\t", " "), smtputf8=smtputf8, encoding=encoding)
    hit = {h.name: h for h in scanner.scan(raw).hits}["RETURNED_NOT_OURS"]
    assert hit.evidence == f"delivery report: the original passed 1 host(s), none of ours ({found_in})"
    assert judged(postfix_dsn(ours.replace("\n\t", " "), smtputf8=smtputf8, encoding=encoding)) == "ours"


@pytest.mark.parametrize(("original", "expected"), [(FORGED_ORIGINAL, "foreign"), (OUR_ORIGINAL, "ours")],
                         ids=["forged", "ours"])
def test_headers_labelled_message_rfc822_headers_are_the_original(original: str, expected: str) -> None:
    """No RFC defines message/rfc822-headers, but some report senders label the original's
    headers so; they are read as text/rfc822-headers are."""
    raw = postfix_dsn(original, headers_only=True).replace(b"text/rfc822-headers", b"message/rfc822-headers")
    assert judged(raw) == expected


def quoted(text: str, marks: str = "> ") -> str:
    """`text` quoted line by line, as a mail program quotes what it answers or forwards."""
    return "".join(f"{marks}{line}".rstrip() + "\n" for line in text.splitlines())


def vacation_quoting(original: str, marks: str = "> ") -> bytes:
    """A vacation reply that quotes the message it answers, headers and all."""
    quote = quoted(original + "\nBuy now.\n", marks)
    return vacation("<x@example.net>") + f"\nYou wrote:\n{quote}".encode()


@pytest.mark.parametrize("marks", ["> ", ">", "> > "])
def test_headers_an_auto_reply_quotes_with_quote_marks_are_the_original(marks: str) -> None:
    """Some vacation programs quote the message they answer, headers and all; the quote marks
    hid the headers, so such a reply to spam forged in our name stayed unjudged."""
    assert judged(vacation_quoting(FORGED_ORIGINAL, marks)) == "foreign"
    assert judged(vacation_quoting(OUR_ORIGINAL, marks)) == "ours"


def test_a_bounce_from_the_null_sender_quoting_the_original_is_judged_by_it() -> None:
    """A plain-text bounce quoting the original with `> `, as one forwarded by quoting it is."""
    head, copy = qmail_bounce(FORGED_ORIGINAL).split(b"copy of the message.\n\n")
    raw = head + b"copy of the message.\n\n" + quoted(copy.decode()).encode()
    null = Envelope(client_ip="203.0.113.9", mail_from="", rcpt_to=["jane@example.org"])
    assert judged(raw, envelope=null) == "foreign"
    assert judged(raw.replace(b"Date:", b"Return-Path: <>\nDate:", 1)) == "foreign"


def test_a_postmasters_reply_quoting_the_headers_of_spam_is_no_returned_mail() -> None:
    """A person answering an abuse report quotes the spam's headers, writing as postmaster@
    even: quoted headers are read only in mail that declares itself returned mail or comes
    from the null sender, so the reply is not taken for backscatter."""
    reply = f"""From: Postmaster <postmaster@remote.example>
To: abuse@example.org
Subject: Re: Spam from your network
Date: Mon, 4 Mar 2024 10:02:11 +0100
Message-ID: <r-1@remote.example>

Thank you, we have closed the customer's account. The headers you sent:

{quoted(FORGED_ORIGINAL)}""".encode()
    person = Envelope(client_ip="203.0.113.9", mail_from="postmaster@remote.example")
    assert judged(reply) == judged(reply, envelope=person) == ""
    null = Envelope(client_ip="203.0.113.9", mail_from="")
    assert judged(reply, envelope=null) == "foreign"


def test_ordinary_mail_quoting_a_conversation_is_no_returned_mail() -> None:
    """A reply quoting the message it answers, `> From:` and `> Received:` and all, is no
    returned mail: a message's text is searched only when its form or sender makes it one."""
    reply = f"""From: Bob <bob@remote.example>
To: jane@example.org
Subject: Re: Quarterly figures
Date: Mon, 4 Mar 2024 10:02:11 +0100
Message-ID: <b-2@remote.example>

Thanks, Jane. Full headers below, as you asked:

{quoted(OUR_ORIGINAL)}""".encode()
    assert judged(reply) == ""
    assert judged(reply, envelope=Envelope(client_ip="203.0.113.9", mail_from="bob@remote.example")) == ""


def test_a_quoted_original_ends_where_the_quote_ends() -> None:
    """The lines after a quote are the replier's: a quote of the Received fields alone, followed
    by header-like lines of the reply's own, is an original cut short, not a whole chain."""
    cut = quoted(FORGED_ORIGINAL.split("From:")[0])
    raw = vacation("<x@example.net>") + f"\n{cut}From: Bob's desk\nDate: Monday\n".encode()
    assert verdict(raw)["unjudged"] == "auto-reply: the original's Received chain is incomplete (quoted text)"


def test_the_null_envelope_sender_makes_a_plain_text_notice_a_bounce() -> None:
    """The From names no daemon here; the milter's empty MAIL FROM does."""
    raw = qmail_bounce(FORGED_ORIGINAL, envelope=True)
    assert judged(raw) == ""
    null = Envelope(client_ip="203.0.113.9", mail_from="", rcpt_to=["jane@example.org"])
    assert judged(raw, envelope=null) == "foreign"
    someone = Envelope(client_ip="203.0.113.9", mail_from="bob@remote.example")
    assert judged(raw, envelope=someone) == ""


def test_a_bounce_a_mailing_list_passed_on_to_its_owner_is_unjudged() -> None:
    """A list hosted elsewhere forwards the bounces of its posts to its owner, one of our users:
    the original is the list's mail, never ours, and the bounce is no backscatter."""
    raw = postfix_dsn(FORGED_ORIGINAL).replace(
        b"Auto-Submitted:", b"List-Id: Talk about widgets <widgets.lists.example.net>\nAuto-Submitted:")
    assert judged(raw) == "unjudged"
    assert verdict(raw)["unjudged"] == ("delivery report: passed on by the list Talk about widgets "
                                        "<widgets.lists.example.net>")


def test_a_vacation_reply_is_ours_by_the_message_id_it_answers_and_otherwise_unjudged() -> None:
    assert judged(vacation("<20240304.77@smtp.example.org>")) == "ours"
    assert judged(vacation("<a1b2c3d4-e5f6@example.org>")) == "unjudged"
    assert verdict(vacation("<x@example.net>"))["unjudged"] == "auto-reply: no original message found"


def test_a_hop_of_our_mx_in_the_bounce_makes_an_original_that_passed_it_ours() -> None:
    """Our MX also relays here, though only smtp.example.org is listed: its own Received
    header in the bounce names it, so a real bounce of mail it sent out is not backscatter."""
    through_mx = FORGED_ORIGINAL.replace("by mail.remote.example", "by mx.example.org")
    assert judged(postfix_dsn(through_mx)) == "ours"


def test_a_message_id_made_by_our_relay_makes_the_original_ours() -> None:
    """Postfix adds a Message-ID with its own name to mail from a client that wrote none."""
    original = FORGED_ORIGINAL.replace("<20240304034009.4412.qmail@pc-77>", "<20240304.55@smtp.example.org>")
    assert judged(postfix_dsn(original)) == "ours"


@pytest.mark.parametrize("written", ["smtp.bücher.example", "SMTP.XN--BCHER-KVA.example."])
def test_a_relay_written_in_either_spelling_of_an_idn_is_ours(written: str) -> None:
    """outbound_relays holds smtp.bücher.example as smtp.xn--bcher-kva.example; a relay writing
    its name in U-labels (SMTPUTF8) was only lower-cased, cut at the ü even, and never ours:
    our own bounces scored RETURNED_NOT_OURS."""
    idn = Config(network=NetworkConfig(outbound_relays=["smtp.bücher.example"]))
    relayed = OUR_ORIGINAL.replace("by smtp.example.org", f"by {written}")
    assert judged(postfix_dsn(relayed), idn) == "ours"
    made = FORGED_ORIGINAL.replace("<20240304034009.4412.qmail@pc-77>", f"<20240304.55@{written}>")
    assert judged(postfix_dsn(made), idn) == "ours"
    assert judged(vacation(f"<20240304.77@{written}>"), idn) == "ours"
    through_mx = postfix_dsn(FORGED_ORIGINAL.replace("by mail.remote.example", "by mx.xn--bcher-kva.example"))
    assert judged(through_mx.replace(b"mx.example.org", "mx.bücher.example".encode()), idn) == "ours"


@pytest.mark.parametrize("original", [
    # the Received fields only: the hop of our relay may have been below the cut
    FORGED_ORIGINAL.split("From:")[0],
    # no Received field at all: nothing says where it went
    FORGED_ORIGINAL.split("From:", 1)[1].join(["From:", ""]),
    "",
], ids=["cut-after-received", "no-received", "empty"])
def test_a_bounce_with_a_cut_or_missing_original_is_unjudged(original: str) -> None:
    assert judged(postfix_dsn(original)) == "unjudged"
    assert judged(postfix_dsn(original, headers_only=True)) == "unjudged"


@pytest.mark.parametrize("raw", [
    # a report with no parts at all
    b"From: MAILER-DAEMON@remote.example\nContent-Type: multipart/report; report-type=delivery-status;"
    b" boundary=zz\n\nnothing here\n",
    # the boundary is never closed and the enclosed message ends in the middle of a header
    b"From: MAILER-DAEMON@remote.example\nContent-Type: multipart/report; boundary=zz\n\n--zz\n"
    b"Content-Type: message/rfc822\n\nReceived: from x (x [198.51.100.1]) by",
    # a report type without a value, an enclosed message without headers
    b"Content-Type: multipart/report; report-type=; boundary=zz\n\n--zz\nContent-Type: message/rfc822\n\n"
    b"\n\nbody only\n--zz--\n",
    # quoted text that begins like headers and is garbage after the first line
    b"From: postmaster@remote.example\nSubject: failure\n\nReceived: \x00\xff\xfe by \n\t\n:::\n",
    # an auto-reply header and nothing else
    b"Auto-Submitted: auto-replied\n\n",
    # an auto-reply quoting garbage that begins like headers
    b"Auto-Submitted: auto-replied\n\n> Received: \x00\xff\xfe by \n>\t\n> :::\n>>>>>\n",
    # a bounce of SMTPUTF8 mail enclosing a base64 original that is no base64
    b"From: MAILER-DAEMON@remote.example\nContent-Type: multipart/report; boundary=zz\n\n--zz\n"
    b"Content-Type: message/global\nContent-Transfer-Encoding: base64\n\n\xff*&^%\n--zz--\n",
    # the same for message/rfc822, its garbage written to look like encoded headers
    b"From: MAILER-DAEMON@remote.example\nContent-Type: multipart/report; boundary=zz\n\n--zz\n"
    b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nUmVjZWl2ZWQ6=IGJ5*\xff\n--zz--\n",
], ids=["no-parts", "truncated", "empty-type", "garbage-quoted", "bare-auto-reply", "garbage-quote-marks",
        "bad-base64-global", "bad-base64-rfc822"])
def test_a_malformed_bounce_is_unjudged_and_scored_without_error(raw: bytes, scanner: Scanner) -> None:
    assert judged(raw) == "unjudged"
    result = scanner.scan(raw)
    assert result.rule_errors == {}
    assert "RETURNED_NOT_OURS" not in result.rule_names


def test_a_user_forwarding_a_message_as_an_attachment_sends_no_returned_mail() -> None:
    forwarded = (postfix_dsn(FORGED_ORIGINAL)
                 .replace(b"MAILER-DAEMON@mail.remote.example (Mail Delivery System)", b"bob@remote.example")
                 .replace(b"Auto-Submitted: auto-replied\n", b"")
                 .replace(b"multipart/report; report-type=delivery-status", b"multipart/mixed"))
    assert judged(forwarded) == ""


def test_an_unjudged_bounce_scores_when_local_cf_gives_it_a_score(tmp_path: Path) -> None:
    local = tmp_path / "local.cf"
    local.write_text("score RETURNED_UNJUDGED 0.5\n")
    site = Scanner(Config(network=OURS.network,
                          rules=RulesConfig(local_cf=str(local))))
    hits = {h.name: h.score for h in site.scan(vacation("<x@example.net>")).hits}
    assert hits["RETURNED_UNJUDGED"] == 0.5


def test_outbound_relays_must_be_host_names(tmp_path: Path) -> None:
    path = tmp_path / "mailsift.toml"
    path.write_text('[network]\noutbound_relays = ["smtp example org"]\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert "network.outbound_relays" in str(raised.value) and str(path) in str(raised.value)
    assert NetworkConfig(outbound_relays=["SMTP.Example.ORG."]).outbound_relays == ["smtp.example.org"]


def test_a_bounce_naming_fifty_thousand_hosts_is_judged_quickly() -> None:
    """A sender writes the original a bounce encloses, and every host and Message-ID domain in
    it was put in ASCII form, each time asked: 50,000 `by ü<n>.x` hosts and 20,000 References
    (within scan.max_bytes) took over a second. Now the distinct names are taken up to a cap.
    Timed in CPU time of this process, so that other work on a loaded machine does not count;
    the message is parsed before the clock starts. It takes 12 ms: the bound is five times that,
    so a check ten times slower fails."""
    hops = "".join(f" by ü{n}.x" for n in range(50_000))
    original = FORGED_ORIGINAL.replace("by mail.remote.example", f"by mail.remote.example{hops}")
    references = f"References: {' '.join(f'<{n}@ü{n}.x>' for n in range(20_000))}\n"
    raw = postfix_dsn(original).replace(b"Auto-Submitted:", f"{references}Auto-Submitted:".encode())
    ctx = CheckContext(analyse(raw, OURS), OURS)
    found, elapsed = cpu_time(lambda: returned_mail(ctx, "any"))
    assert elapsed < 0.06
    assert found == "delivery report: the original passed 200 host(s), none of ours (message/rfc822)"


def test_our_relay_after_many_repeats_of_another_host_still_makes_the_original_ours() -> None:
    """The cap counts distinct names: a host written again and again takes one place."""
    repeated = " by mail.remote.example" * 10_000
    original = OUR_ORIGINAL.replace("by smtp.example.org", f"{repeated} by smtp.example.org")
    assert judged(postfix_dsn(original)) == "ours"
