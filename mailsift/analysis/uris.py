"""Links: finding them in text and normalising them so that obfuscated spellings compare equal.

Spammers write the same host as `WWW.Example.COM`, `%77ww.example.com`, `xn--` punycode or an IP in
hex or as one decimal number, to slip past URI blocklists and rules. Everything is reduced to one
spelling here: lower-case Unicode host, unreserved characters percent-decoded, IPs in dotted form,
plus the registrable domain that blocklists are keyed on.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from publicsuffixlist import PublicSuffixList

from mailsift.analysis.model import Uri

# Offline copy shipped with the package, loaded once per process (it takes ~30 ms).
# Unknown TLDs are not public suffixes: `file.txt` or `intranet.corp` has no registrable domain.
PSL = PublicSuffixList(accept_unknown=False)

# The lookahead repeats the first letters as a class so that the engine can skip ahead to them
# (the stdlib only does so for a leading class): half the time on plain text, same matches.
TEXT_URI = re.compile(
    r"(?=[hfw])(?:\b(?:https?|ftp)://|\bwww\d{0,3}\.)[^\s<>\"'`{}|\\^\x00-\x1f\x7f]+",
    re.IGNORECASE)
# A whole anchor text that is just a host name, e.g. "paypal.com" or "www.paypal.com/login".
BARE_HOST = re.compile(r"\s*(?:(?:https?|ftp)://)?([\w-]+(?:\.[\w-]+)+)(?:[/:?#]\S*)?\s*", re.UNICODE)
IP_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])")
TRAILING = ".,;:!?'\"*"
# Schemes that name message parts or inline data, not places a reader can be sent to.
NOT_LINKS = frozenset({"cid", "mid", "data"})
DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}


@dataclass(frozen=True, slots=True)
class HostInfo:
    host: str  # normalised host
    domain: str
    is_ip: bool


def find_in_text(text: str) -> list[str]:
    """Raw URIs written in plain text, with sentence punctuation that follows them removed."""
    if "://" not in text and "www" not in text and "WWW" not in text:
        return []
    return [trim(m.group()) for m in TEXT_URI.finditer(text)]


def trim(raw: str) -> str:
    """Drop punctuation that ends the sentence rather than the URI; keep balanced brackets."""
    while raw and (raw[-1] in TRAILING or _unbalanced(raw)):
        raw = raw[:-1]
    return raw


def _unbalanced(raw: str) -> bool:
    """A closing bracket at the end that has no opening one in the URI belongs to the text."""
    last = raw[-1]
    return last in ")]" and raw.count("(" if last == ")" else "[") < raw.count(last)


def normalise(raw: str, source: str = "text", anchor_text: str = "") -> Uri | None:
    """The normalised Uri for a raw link, or None for things that are not links with a host."""
    text = raw.strip()
    if text[:3].lower() == "www":
        text = "http://" + text
    elif text.startswith("//"):
        # Protocol-relative: the page's own scheme, which for mail is whatever the reader uses.
        text = "http:" + text
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or not scheme.isascii() or not scheme.isalpha() or scheme in NOT_LINKS:
        return None
    if scheme in ("http", "https", "ftp"):
        # Browsers read backslashes as slashes and accept any number of them after the colon.
        rest = "//" + rest.replace("\\", "/").lstrip("/")
    if not rest.startswith("//"):
        return Uri(raw, f"{scheme}:{rest}", scheme, "", "", source=source, anchor_text=anchor_text)
    authority, path = _split_authority(rest[2:])
    hostport = authority.rpartition("@")[2]
    host, port = _split_port(hostport)
    info = host_info(host)
    if not info.host:
        return None
    netloc = info.host if ":" not in info.host else f"[{info.host}]"
    if port and port != DEFAULT_PORTS.get(scheme):
        netloc += ":" + port
    path = UNRESERVED_ESCAPE.sub(lambda m: chr(int(m[1], 16)), path) if "%" in path else path
    return Uri(raw, f"{scheme}://{netloc}{path or '/'}", scheme, info.host, info.domain,
               is_ip=info.is_ip, source=source, anchor_text=anchor_text)


def _split_authority(rest: str) -> tuple[str, str]:
    for index, char in enumerate(rest):
        if char in "/?#":
            return rest[:index], rest[index:]
    return rest, ""


def _split_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        return host, after.lstrip(":")
    host, _, port = hostport.partition(":")
    return host, port


@lru_cache(maxsize=8192)
def host_info(host: str) -> HostInfo:
    """Normalised host, registrable domain and IP flag; cached because mail repeats hosts a lot."""
    host = unquote(host).strip().lower().rstrip(".")
    if not host:
        return HostInfo("", "", False)
    ip = parse_ip(host)
    if ip:
        return HostInfo(ip, "", True)
    if "xn--" in host:
        host = ".".join(_idna_label(label) for label in host.split("."))
    return HostInfo(host, PSL.privatesuffix(host) or "", False)


def _idna_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label


def parse_ip(host: str) -> str:
    """The dotted form of an IP literal in any spelling `inet_aton` accepts, '' for a name.

    Browsers accept `0x7f.1`, `017700000001` and `2130706433` for 127.0.0.1, and spammers use all
    of them: one to four parts, each decimal, `0x` hex or `0` octal, the last filling the rest.
    """
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return ""
    if not host[0].isdigit():
        return ""
    parts = host.split(".")
    if len(parts) > 4:
        return ""
    numbers = []
    for part in parts:
        if not IP_PART.fullmatch(part):
            return ""
        numbers.append(_ip_number(part))
    room = 256 ** (5 - len(parts))
    if numbers[-1] >= room or any(n > 255 for n in numbers[:-1]):
        return ""
    value = 0
    for n in numbers[:-1]:
        value = value * 256 + n
    return str(ipaddress.IPv4Address(value * room + numbers[-1]))


def _ip_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    return int(part, 8) if part[0] == "0" else int(part)


def named_domain(text: str) -> str:
    """The registrable domain a link text names (`www.paypal.com`, `https://paypal.com/x`), or ''."""
    match = BARE_HOST.fullmatch(text)
    if match is None:
        return ""
    return host_info(match[1]).domain
