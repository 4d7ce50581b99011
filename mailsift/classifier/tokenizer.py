"""Bayes tokens from an analysed message — never from raw bytes.

Because the analysis has already decoded every charset and transfer encoding, the same words
give the same tokens whether they arrived as UTF-8, windows-1251 or KOI8-R, base64 or
quoted-printable. Only the `mime:` tokens say how the message was encoded, on purpose: the
encoding itself is evidence (spam favours odd charsets and base64 text).

Header tokens carry a prefix per header so "free" in the Subject and "free" in the body are
different evidence. Headers written by filters (X-Spam-*, X-Virus-*, X-Amavis*, ours) are never
read — we tokenise a fixed list of headers — so earlier filtering cannot leak into the model.

Every copy of a message gives the same tokens, which learning depends on: the store keeps no
token list per message, so relearning it as the other class or forgetting it tokenises the copy
at hand again, and a token that copy has and the learned one had not moves a count that was
never counted. The milter's copy holds the sender's headers and the connection Postfix reports;
the delivered file adds what our own hosts wrote on the way (our MX's Received header, those of
internal relays and local delivery, a tagged Subject, our X-Spam-* and Authentication-Results),
the quarantine's copy our MX's Received header. So the tokenizer reads none of that: the Subject
without our tag (`untagged`), and the relays from the first untrusted one on (`_received`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import regex

from mailsift.analysis.attachments import RISKY, last_extension
from mailsift.analysis.model import Archive, Message, Relay

MIN_WORD, MAX_WORD = 3, 20
# Runs of letters/digits with inner apostrophes, dots or dashes ("don't", "e-mail", "3.5").
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['.\-][\p{L}\p{M}\p{N}]+)*")
# The same pattern for ASCII text, which is most mail: there the stdlib engine finds the words in
# about two thirds of the time (70 -> 45 us a message on the corpus).
ASCII_WORD = re.compile(r"[A-Za-z0-9]+(?:['.\-][A-Za-z0-9]+)*")
# Scripts written without spaces: split into overlapping character pairs, the usual choice for
# CJK text when no dictionary segmenter is at hand.
CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+")
DIGITS = regex.compile(r"\d")
URL_WORD = regex.compile(r"[^\W_]{3,20}")
MESSAGE_ID_SHAPE = regex.compile(r"[A-Za-z]+|\d+")

ADDRESS_HEADERS = ("From", "Reply-To", "To", "Sender")
MAILER_HEADERS = ("X-Mailer", "User-Agent")
# Kinds of file named per archive: a zip of 1,000 files would otherwise be 1,000 distinct tokens
# of one message, outweighing its words.
MAX_MEMBER_KINDS = 10


def tokenize(msg: Message, bigrams: bool = False) -> list[str]:
    """The message's distinct tokens; a token counts once per message, as in SpamBayes."""
    found: dict[str, None] = {}
    for source in (_text_tokens(msg.visible_text, "", bigrams), _subject(msg), _addresses(msg),
                   _relay(msg), _received(msg), _mime(msg), _mailer(msg),
                   _message_id(msg), _urls(msg), _html(msg), _attachments(msg), _facts(msg)):
        found.update(dict.fromkeys(source))
    return list(found)


def _words(text: str) -> list[str]:
    return (ASCII_WORD if text.isascii() else WORD).findall(text)


def _word_token(word: str, prefix: str) -> str | None:
    """Short words are noise; long ones and numbers become shapes so they still count."""
    if not word.isalpha() and DIGITS.search(word):
        if word.isdigit():
            return f"{prefix}num:{len(word)}"
        shape = "".join("9" if c.isdigit() else "a" if c.isalpha() else c for c in word[:24])
        return f"{prefix}shape:{_squeeze(shape)}"
    if len(word) < MIN_WORD:
        return None
    if len(word) > MAX_WORD:
        return f"{prefix}long:{word[0]}:{len(word) // 10 * 10}"
    return prefix + word


def _squeeze(shape: str) -> str:
    """`aaaa999` -> `a9`: the shape of an identifier without its length."""
    out = []
    for c in shape:
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _text_tokens(text: str, prefix: str, bigrams: bool) -> Iterable[str]:
    text = text.lower()
    words = _words(text)
    if not bigrams:  # then order and repeats do not matter: each distinct word is looked at once
        words = list(dict.fromkeys(words))
    cjk = CJK.search(text) is not None
    previous = None
    for word in words:
        if cjk and CJK.search(word):
            yield from _cjk_pairs(word, prefix)
            previous = None
            continue
        token = _word_token(word, prefix)
        if token is None:
            continue
        yield token
        if bigrams and previous is not None:
            yield f"{prefix}bi:{previous} {token}"
        previous = token


def _cjk_pairs(word: str, prefix: str) -> Iterable[str]:
    for run in CJK.findall(word):
        if len(run) == 1:
            yield prefix + run
        for i in range(len(run) - 1):
            yield prefix + run[i : i + 2]
    rest = CJK.sub(" ", word).split()
    for piece in rest:
        token = _word_token(piece, prefix)
        if token:
            yield token


def _subject(msg: Message) -> Iterable[str]:
    subject = untagged(msg.subject, msg.subject_tag)
    yield from _text_tokens(subject, "subject:", False)
    if subject and subject.upper() == subject and any(c.isalpha() for c in subject):
        yield "subject:shouting"


def untagged(subject: str, tag: str) -> str:
    """The Subject as the sender wrote it, without the tag the milter puts in front of spam's
    (actions.subject_tag; `milter.subject.tagged_subject`): the delivered copy has the tag, the
    milter's does not. Read from the decoded text, so a Subject encoded (RFC 2047) after tagging,
    or a tag in another script, loses it all the same. A Subject the sender began with the tag
    loses it too, so the milter's copy of it and the delivered one agree. The tag is compared
    trimmed, as the Subject is read: "[SPAM] " tagging an empty Subject leaves "[SPAM]"."""
    tag = tag.strip()
    if tag and subject.startswith(tag):
        return subject[len(tag):].lstrip()
    return subject


def _addresses(msg: Message) -> Iterable[str]:
    for header in ADDRESS_HEADERS:
        values = msg.header_values(header)
        if not values:
            if header in ("From", "To"):
                yield f"{header.lower()}:none"
            continue
        prefix = header.lower()
        for name, addr in msg.addresses(header)[:3]:
            user, _, domain = addr.lower().rpartition("@")
            if domain:
                yield f"{prefix}:domain:{domain}"
            if user:
                yield _word_token(user, f"{prefix}:user:") or f"{prefix}:user:short"
            for word in _words(name.lower()):
                token = _word_token(word, f"{prefix}:name:")
                if token:
                    yield token
            if not name:
                yield f"{prefix}:noname"


def _relay(msg: Message) -> Iterable[str]:
    relay = msg.first_untrusted
    if relay is None:
        return
    try:
        ip = ipaddress.ip_address(relay.ip)
    except ValueError:
        yield "relay:ip:invalid"
    else:
        if ip.version == 4:
            octets = relay.ip.split(".")
            yield f"relay:ip:{octets[0]}.{octets[1]}"
            yield f"relay:ip:{'.'.join(octets[:3])}"
        else:
            yield f"relay:ip6:{ip.exploded[:9]}"
    yield f"relay:rdns:{relay.rdns.lower().rpartition('.')[2] or 'none'}" if relay.rdns else "relay:rdns:none"
    for word in _helo(relay).lower().split(".")[-2:]:
        yield f"relay:helo:{word}"


def _helo(relay: Relay) -> str:
    """The HELO name as Postfix's Received header records it: a client that sent none is written
    with its verified name, else "unknown". The milter's connection keeps it empty, so without
    this its copy said `relay:helo:` where the delivered copy said `relay:helo:unknown`."""
    return relay.helo or relay.rdns or "unknown"


def _received(msg: Message) -> Iterable[str]:
    """The sender's hops' host names and networks: mail from the same servers and lists looks
    alike.

    Measured on a validation quarter of the train split: Bayes-alone 1-AUC 0.0398% -> 0.0373%.
    Tokens from every other header (presence, or first words) made it worse (0.05-0.21%): they
    are shared by ham and spam alike and crowd out the words that decide.

    Only the hops from the first untrusted relay on (the client our network took the message
    from, and what it claims came before), without that relay's `by`, which is our own host:
    the trusted hops and that name are ours (our MX, internal relays, local delivery: LMTP,
    Dovecot), the same on all mail, and each copy has others. The milter's copy has the
    connection Postfix reported, with no `by`; the delivered file has our MX's Received header
    and those added after it; the quarantine's, our MX's. Tokens from them differed between the
    copies, so a correction from the delivered file (`learn`) moved counts autolearn never added.
    Measured in 5-fold cross-validation on the train split (bench/bayes_cv.py), rules + Bayes:
    FN 5.49% -> 5.63% (2 of 1,422 spam), 1-AUC 0.032% -> 0.034%, false positives 3 -> 3. What
    went are the hosts that collected the corpus (rcvd:by:jmason.org in 1,768 of its ham and 35
    of its spam; rcvd:ip:127.0.0 of its fetchmail hops), which tell one mailbox from another, not
    spam from ham: at a site every message passes the same hosts of its own.
    """
    for index, relay in enumerate(msg.untrusted_relays[:8]):
        names = [("from", relay.rdns or relay.helo)] + ([("by", relay.by)] if index else [])
        for name, host in names:
            parts = host.lower().split(".")
            if len(parts) >= 2:
                yield f"rcvd:{name}:{'.'.join(parts[-2:])}"
        if relay.ip.count(".") == 3:
            yield f"rcvd:ip:{relay.ip.rsplit('.', 1)[0]}"


def _mime(msg: Message) -> Iterable[str]:
    yield f"mime:ct:{msg.header('Content-Type').split(';')[0].strip().lower() or 'none'}"
    for part in msg.text_parts:
        yield f"mime:part:{part.content_type}"
        yield f"mime:charset:{part.declared_charset or 'none'}"
        yield f"mime:cte:{part.transfer_encoding or 'none'}"


def _mailer(msg: Message) -> Iterable[str]:
    for header in MAILER_HEADERS:
        for value in msg.header_values(header)[:1]:
            for word in _words(value.lower())[:4]:
                token = _word_token(word, "mailer:")
                if token:
                    yield token
    if not any(msg.has_header(h) for h in MAILER_HEADERS):
        yield "mailer:none"


def _message_id(msg: Message) -> Iterable[str]:
    """The Message-ID's shape, not its value: each mail program writes its own recognisable pattern."""
    value = msg.header("Message-ID")
    if not value:
        yield "msgid:none"
        return
    local, _, domain = value.strip().strip("<>").partition("@")
    shape = MESSAGE_ID_SHAPE.sub(lambda m: "a" if m.group().isalpha() else "9", local)
    yield f"msgid:shape:{shape[:30]}"
    if domain:
        yield f"msgid:domain:{domain.lower().rpartition('.')[2]}"


def _urls(msg: Message) -> Iterable[str]:
    for uri in msg.uris[:50]:
        yield f"url:host:{uri.host}"
        if uri.domain:
            yield f"url:domain:{uri.domain}"
        if uri.is_ip:
            yield "url:ip"
        path = uri.url.split(uri.host, 1)[-1] if uri.host else uri.url
        for word in URL_WORD.findall(path.lower())[:8]:
            yield f"url:path:{word}"


def _html(msg: Message) -> Iterable[str]:
    html = msg.html
    if not html.parts:
        return
    yield "html:yes"
    for name in ("images", "forms", "scripts", "iframes", "hidden_chars", "tiny_chars", "remote_images"):
        value = getattr(html, name)
        if value:
            yield f"html:{name}:{min(value.bit_length(), 8)}"
    if html.link_mismatches:
        yield "html:link_mismatch"


def _attachments(msg: Message) -> Iterable[str]:
    for att in msg.attachments[:10]:
        yield f"att:type:{att.declared_type}"
        if att.sniffed_type:
            yield f"att:sniffed:{att.sniffed_type}"
        for ext in att.extensions[-2:]:
            yield f"att:ext:{ext}"
        if att.archive is not None:
            yield from _archive(att.archive)


def _archive(archive: Archive) -> Iterable[str]:
    """What an archive holds, as the archive rules read it: Bayes learns which kinds of file a
    site's spam zips up (a lone .js, an .iso) and which its ham does (a folder of PDFs)."""
    yield f"att:archive:{archive.kind}"
    if archive.encrypted:
        yield "att:archive:encrypted"
    if archive.unlisted:
        yield "att:archive:unlisted"
    if archive.escaping:
        yield "att:archive:escape"
    kinds = {last_extension(member) or "none" for member in archive.members}
    # Risky kinds first: ten decoy kinds (a.a0 ... a.a9) must not push the .js out of the tokens.
    for kind in sorted(kinds, key=lambda kind: (kind not in RISKY, kind))[:MAX_MEMBER_KINDS]:
        yield f"att:member:{kind}"
    if len(kinds) > MAX_MEMBER_KINDS:
        yield "att:member:many"


def _facts(msg: Message) -> Iterable[str]:
    """What was wrong with the message, but not what only a header field written or rewritten
    on the way to the mailbox had (`Facts.kept`), as the copies differ there. That left out
    fact:header_8bit of 29 corpus messages (23 of them spam) and fact:header_bad_encoded_word of
    one: 1-AUC 0.033% -> 0.034% in bench/bayes_cv.py, FN and false positives unchanged."""
    for name in msg.facts.items:
        if name in msg.facts.kept:
            yield f"fact:{name.lower()}"
