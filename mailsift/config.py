"""Configuration: one TOML file, validated once at start-up into an immutable `Config` object.

Lookup order: `--config`, `$MAILSIFT_CONFIG`, `/etc/mailsift/mailsift.toml`, then built-in defaults.
A bad file stops start-up with one line naming the file, the key and what is allowed, because an
administrator editing a config over SSH at night should not have to read a traceback.
Every default carries its reason in the field description; `mailsift.example.toml` mirrors them.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from mailsift.domains import Subaddressing, ascii_address, ascii_domain, name_problem
from mailsift.quarantine.model import list_entry
from mailsift.secrets import SecretError, masked_urls, read_secret

SYSTEM_CONFIG = Path("/etc/mailsift/mailsift.toml")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # URLs of a Redis, for the store and the index
SQLITE_SCHEME = "sqlite:///"  # then the absolute path of the file


class ConfigError(Exception):
    """A configuration problem, already phrased as the one line the administrator will read."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _allowed_text(text: str) -> dict[str, object]:
    """A field's `json_schema_extra` naming the form its values take, for the one-line error: the
    type alone ("a list of strings") tells an admin who wrote a host name or a bad CIDR nothing."""
    return {"allowed": text}


class OwnValue(ValueError):
    """A refusal that names what is wrong in the value itself: the error line leaves out
    "(got ...)", which for a list of [[web.users]] would repeat every user and password hash,
    and for a password_hash could be the password itself, pasted where its hash goes."""


CIDR_FORM = _allowed_text('IP networks in CIDR notation, e.g. ["192.0.2.0/24", "2001:db8::/32"]')
REDIS_FORMS = "redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS) or unix:///PATH"


def _existing_file(value: str) -> str:
    """A file the config names, checked when it loads, so that a typo names the file and key: a
    missing TLS file of a Redis showed only when it was used, as "Error 2 connecting to
    10.0.0.5:6379. No such file or directory", as if the Redis were what was missing. A file
    this user may not look at (a key in a folder it cannot search, such as /etc/ssl/private)
    is named with its key too: Path.exists raised PermissionError out of the check, an
    "internal error" of every command, and a reload's thread ended on it."""
    if not value:
        return value
    try:
        Path(value).stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"{value}: no such file or directory") from None
    except OSError as exc:
        raise ValueError(f"{value}: cannot look at it: {exc.strerror or exc}") from None
    return value


def _used_tls_file(value: str, info: ValidationInfo, url_key: str) -> str:
    """A Redis TLS file (tls_ca_file, tls_cert_file, tls_key_file) checked as `_existing_file`
    when its section's URL (`url_key`, validated before it) is rediss://, the only URL it is used
    with: a file named in a section without TLS, or without a Redis at all ([outbound] counting in
    memory), loaded before these checks, and refusing it would stop a working milter at upgrade."""
    if str(info.data.get(url_key, "")).startswith("rediss://"):
        return _existing_file(value)
    return value


TLS_FILE_FORM = _allowed_text("empty, or the path of an existing file")


def _networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value, strict=False)
    return values


class ScoringConfig(Section):
    required_score: Annotated[float, Field(ge=-100, le=1000)] = Field(
        5.0, description="Score at or above which a message is spam; 5.0 as in SpamAssassin, so "
        "thresholds and habits carry over.")


class ScanConfig(Section):
    max_bytes: Annotated[int, Field(ge=16 * 1024, le=256 * 1024 * 1024)] = Field(
        1024 * 1024, description="Body bytes analysed per message, counted as Postfix hands them "
        "to the milter: each line end as CR LF, so a file's LF lines count a byte more each, and "
        "the headers not at all (they are read whole). `mailsift check`, `learn` and the "
        "quarantine read every copy of a bigger message just as far; `full` rules see its headers "
        "and that part of the body, and a DKIM signature over the rest of it is neutral. Spam "
        "payloads sit at the start and 1 MiB keeps the worst case bounded. The rest is ignored, "
        "never rejected.")
    max_parts: Annotated[int, Field(ge=1, le=10000)] = Field(
        200, description="MIME parts analysed per message; beyond it parts are skipped and the "
        "fact MIME_TOO_MANY_PARTS is set.")
    max_depth: Annotated[int, Field(ge=1, le=1000)] = Field(
        30, description="Nesting depth of multiparts analysed; real mail rarely exceeds 5.")
    rule_budget: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="Seconds per message for rules that the linear-time engine cannot run; "
        "a rule that overruns is logged by name and counted as not hit. CPU seconds, as the "
        "regex library counts them: with every core busy a budget of 1.0 took 2.5 s on the "
        "clock; milter.timeout bounds the whole message either way.")
    body_part_scan_size: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = Field(
        50_000, description="Characters of each text part's rendered text that `body` rules see, "
        "cut at the next line or word end, as SpamAssassin's body_part_scan_size (same default, "
        "which its stock rules are tuned for); 0: the whole part. Rules written for SpamAssassin "
        "ran on the regex engine over the whole text, 1 s of CPU for a 300 KB part, and ran out "
        "of rule_budget. Bayes and links see the whole text; Python checks keep their own limits.")
    rawbody_part_scan_size: Annotated[int, Field(ge=0, le=256 * 1024 * 1024)] = Field(
        500_000, description="The same for `rawbody` rules, which see each text part decoded "
        "but not rendered, as SpamAssassin's rawbody_part_scan_size (same default); 0: the "
        "whole part.")


class RulesConfig(Section):
    shipped: bool = Field(True, description="Load the rule files shipped with mailsift.")
    paths: list[str] = Field(
        default_factory=list, description="Further rule files or directories (every *.cf, in name "
        "order), loaded after the shipped rules; SpamAssassin .cf files work here. Each must "
        "exist.", json_schema_extra=_allowed_text(
            'existing rule files or folders (every *.cf in them), e.g. ["/etc/mailsift/rules.d"]'))
    local_cf: str = Field(
        "/etc/mailsift/local.cf", description="The site's own overrides (a file, or a directory "
        "whose *.cf are read in name order), loaded last so its scores win; a missing one is fine.")
    cache_dir: str = Field(
        "", description="Where compiled pattern databases are kept between starts (compiling "
        "takes seconds, loading milliseconds); empty: $XDG_CACHE_HOME/mailsift or "
        "~/.cache/mailsift. An unwritable directory only costs start-up time.")

    @field_validator("paths")
    @classmethod
    def _existing(cls, values: list[str]) -> list[str]:
        """Caught here, a typo names the file and key; in the scanner it would surface as a bare
        FileNotFoundError, and in the milter's or eval's workers only as workers that cannot start."""
        return [_existing_file(value) for value in values]

    def cache_path(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "mailsift"


class NetworkConfig(Section):
    trusted_networks: list[str] = Field(
        default_factory=list, description="Relays whose Received headers are believed (CIDR). "
        "Loopback is always trusted; list your MX and relay hosts. Empty (with internal_networks "
        "empty too): every private address is trusted, as SpamAssassin infers, so an internal relay "
        "in front of mailsift is not judged as the sender.", json_schema_extra=CIDR_FORM)
    internal_networks: list[str] = Field(
        default_factory=list, description="Relays inside your organisation (CIDR); defaults to the "
        "trusted networks when empty, and stands in for them when they are empty, as in "
        "SpamAssassin.", json_schema_extra=CIDR_FORM)
    own_domains: list[str] = Field(
        default_factory=list, description="Mail domains that are ours. Outside mail using them in "
        "the HELO or the From display name, or a From domain that imitates one, is a forgery sign; "
        "empty: those checks stay off. Domain lists are never asked about them (nor about the "
        "registrable domain of a host name listed here).",
        json_schema_extra=_allowed_text('domain names, e.g. ["example.org"]'))
    arc_trusted_sealers: list[str] = Field(
        default_factory=list, description="Forwarders whose ARC seal (RFC 8617) you believe, by the "
        "seal's d= domain (subdomains included), e.g. a mailing list host or the mail provider your "
        "users forward from. A DMARC failure of mail whose valid ARC chain such a forwarder sealed "
        "last, having recorded that DMARC (or aligned SPF or DKIM) passed when the mail reached it, "
        "is not scored as the domain's policy: forwarding breaks SPF, and footers and subject tags "
        "break DKIM. Empty: ARC is not checked; anyone can write an ARC seal, so no sealer is "
        "trusted unless you list it.",
        json_schema_extra=_allowed_text('domain names, e.g. ["lists.example.org", "google.com"]'))
    outbound_relays: list[str] = Field(
        default_factory=list, description="Host names of the servers your mail leaves through, as "
        "each writes itself after `by` in its Received header (Postfix: myhostname); a name covers "
        "the hosts under it. A bounce or auto-reply whose original message shows a whole Received "
        "chain that none of them (nor your hosts that passed the bounce on) wrote, and a "
        "Message-ID none of them made, answers mail forged in your name: RETURNED_NOT_OURS. "
        "List the hosts of every service that sends mail in your name too (a newsletter or CRM "
        "service, a ticket system): the bounces of their mail would otherwise score. "
        "Empty: bounces are recognised, never scored, as no other setting says which hosts send "
        "your mail (your MX may not be one).",
        json_schema_extra=_allowed_text('host names, e.g. ["smtp.example.org", "out.example.org"]'))

    _check = field_validator("trusted_networks", "internal_networks")(_networks)

    @field_validator("own_domains", "arc_trusted_sealers", "outbound_relays")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        return [_domain_name(v) for v in values]


def _domain_name(value: str) -> str:
    """A domain as the checks compare it: in its ASCII form, so `bücher.example` may be written
    as the company spells it and still match mail that says xn--bcher-kva.example. A name no
    mail domain can be (`name_problem`: 192.0.2.44, x.-example, a label of 64 characters) is
    refused saying why, by the rule list entries go by: it was taken, and matched no mail."""
    name = ascii_domain(value)
    problem = name_problem(name)
    if problem:
        raise ValueError(f"{value!r} is not a domain name: {problem}")
    return name


def mail_address(value: str, local_hosts: bool = False) -> str:
    """A full address, lowercased: quarantine access and digests go by it, so "jane@" or
    "jane" would grant nothing and mail nobody (the digest crashed on it). An internationalised
    domain is kept as written (jörg@bücher.example is what its user reads and where the digest
    goes); what reads it compares it in its ASCII form (`ascii_address`). Its domain goes by
    the rule of every domain (`name_problem`), saying why one is refused. With `local_hosts`,
    for a release an admin types, a host name without a dot (root@localhost, which Debian's
    mydestination delivers) and an address literal (jane@[192.0.2.7]) are taken too."""
    local, _, domain = value.strip().lower().rpartition("@")
    domain = domain.rstrip(".")
    not_one = f"{value!r} is not a mail address like jane@example.org"
    # "@" in the local part: a doubled or misplaced one (jane@@example.org), which Postfix
    # refuses unquoted; a quoted local part ("a@b"@...) is refused with its quote.
    if not local or not domain or any(c.isspace() or c in '<>*?,"@' for c in local):
        raise ValueError(not_one)
    if local_hosts and (LOCAL_HOST.fullmatch(domain) or _address_literal(domain)):
        return f"{local}@{domain}"
    problem = name_problem(ascii_domain(domain))
    if problem:
        raise ValueError(f"{not_one}: {problem}")
    return f"{local}@{domain}"


LOCAL_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # one label of a host name


def _address_literal(domain: str) -> bool:
    """Whether `domain` is an address literal as RFC 5321 4.1.3 writes one: [IPv4], [IPv6:...]."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return False
    try:
        ipaddress.ip_address(domain[1:-1].removeprefix("ipv6:"))
    except ValueError:
        return False
    return True


def _recipient_pattern(value: str) -> str:
    """user@example.org, @example.org or example.org; a wildcard would silently match nobody."""
    text = value.strip()
    if "*" in text or "?" in text:
        raise ValueError(f"{value!r}: no wildcards; @example.org is every address of that domain, "
                         "example.org also its subdomains")
    if text.startswith("@"):
        return "@" + _domain_name(text[1:])
    if "@" in text:  # the domain in its ASCII form, as policy_for compares it
        return ascii_address(mail_address(text))
    return _domain_name(text)


def _nameserver(value: str) -> str:
    """HOST or HOST:PORT, IPv6 as [ADDR]:PORT: a test or a local resolver may sit on any port."""
    host, port = split_host_port(value)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"port of {value!r} out of range")
    return value


def _nameservers(values: list[str]) -> list[str]:
    return [_nameserver(v) for v in values]


def split_host_port(value: str, default_port: int = 53) -> tuple[str, int]:
    """'192.0.2.1', '192.0.2.1:5353', '2001:db8::1' or '[2001:db8::1]:5353' -> (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest.removeprefix(":") or default_port)
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, int(port) if port.isdigit() else -1
    return value, default_port


RULE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,49}")


class DnsList(Section):
    """One DNS list: a zone queried for relay IPs or for the registrable domains of the links
    and of the names written in the text."""

    zone: str = Field(description="The list's DNS zone, e.g. zen.example.net; for a commercial "
                      "list, the zone without your access key (zen.dq.spamhaus.net), the key "
                      "going in access_key_file. It names the list in reports.",
                      json_schema_extra=_allowed_text('a DNS zone name, e.g. "zen.example.net"'))
    access_key_file: str = Field(
        "", description="File holding a commercial list's access key (Spamhaus DQS, Abusix), "
        "readable by the mailsift user (e.g. root:mailsift, mode 0640): it is put in front of "
        "the zone in queries only, so reports, headers, logs and listings name the zone without "
        "it. Empty: the zone is queried as written.",
        json_schema_extra=_allowed_text("empty, or the path of a file holding the key alone "
                                        "(letters, digits, - and _)"))
    rule: str = Field(description="Name of the rule a listing hits, e.g. RCVD_IN_EXAMPLE; it shows "
                      "in reports like any rule.")
    score: float = Field(description="The rule's score when the network is used; this is the one "
                         "place it is set.")
    kind: Literal["ip", "uri"] = Field("ip", description="ip: look up the untrusted relays' "
                                       "addresses; uri: look up the domains the message links to "
                                       "or writes in its text.")
    codes: list[str] = Field(
        default_factory=list, description="Answers that count as listed, e.g. [\"127.0.0.2\"]; "
        "empty: any 127.0.0.0/8 answer except 127.0.0.1 and 127.255.255.0/24, which lists use to "
        "refuse queries (e.g. through public resolvers); those never count, even when named here.",
        json_schema_extra=_allowed_text('IPv4 addresses, e.g. ["127.0.0.2", "127.0.0.3"]'))
    relays: Literal["first", "all"] = Field(
        "all", description="ip lists: look up every untrusted relay, or only the one that handed "
        "the message to us (right for lists of dynamic address space).")
    ipv6: bool = Field(
        True, description="ip lists: also look up IPv6 relays (as RFC 5782's nibble names). On "
        "by default, so no list that does list IPv6 misses such a client; false for a list whose "
        "operator says it lists IPv4 only: asking it costs a query per IPv6 message, for no answer.")
    describe: str = Field("", description="Description shown in reports; empty: one is made up "
                          "from the zone.")
    _access_key: str = PrivateAttr("")

    @property
    def query_zone(self) -> str:
        """The name queries go under: the access key in front of the zone. Only queries use it;
        everything shown names `zone`, which never holds the key."""
        return f"{self._access_key}.{self.zone}" if self._access_key else self.zone

    @property
    def key_in_zone(self) -> bool:
        """Whether the access key was written in `zone` (the old way), not in access_key_file."""
        return bool(self._access_key) and not self.access_key_file

    @model_validator(mode="wrap")
    @classmethod
    def _keyed(cls, data: Any, handler: ModelWrapValidatorHandler[DnsList]) -> DnsList:
        """The list with its access key kept apart from `zone`: read from access_key_file, or
        taken off a zone written the old way with the key in it (`written_key`), so that an
        upgraded config keeps querying as before while its reports stop naming the key."""
        written = ""
        if isinstance(data, dict) and isinstance(data.get("zone"), str):
            written, zone = written_key(data["zone"])
            data = {**data, "zone": zone}
        entry = handler(data)
        if written and entry.access_key_file:
            raise _secret_error(cls, "zone", f"holds an access key in front of {entry.zone}, and "
                                "access_key_file gives one too: write the zone without the key",
                                data["zone"])
        entry._access_key = _file_key(cls, entry.access_key_file) or written
        return entry

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _domain_name(value)

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        if not RULE_NAME.fullmatch(value):
            raise ValueError("must be upper-case letters, digits and _ starting with a letter")
        return value

    @field_validator("codes")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.IPv4Address(value)
        return values


# Commercial lists whose operators document their private zones as KEY.LIST.SUFFIX (Spamhaus
# DQS: KEY.zen.dq.spamhaus.net; Abusix: KEY.combined.mail.abusix.zone). Only there can a key
# written in `zone` be told apart for sure: elsewhere the first label may be the list's own name
# (b.barracudacentral.org, list.dnswl.org), and guessing would show a key or hide a list's name.
KEYED_ZONE_SUFFIXES = ("dq.spamhaus.net", "mail.abusix.zone")
# An access key as a DNS name carries it: one or more labels of letters, digits, - and _.
ACCESS_KEY = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*")


def written_key(zone: str) -> tuple[str, str]:
    """(key, zone without it) for a zone written with its access key under one of
    KEYED_ZONE_SUFFIXES, else ("", zone) as written."""
    labels = zone.strip().rstrip(".").split(".")
    for suffix in KEYED_ZONE_SUFFIXES:
        if len(labels) == suffix.count(".") + 3 and ".".join(labels[2:]).lower() == suffix:
            return labels[0], ".".join(labels[1:])
    return "", zone


def _file_key(model: type[BaseModel], file: str) -> str:
    """The access key in `file` ("" when none is named), read as Redis password files are; a
    key no DNS name can carry is refused without being shown, as it is a secret."""
    if not file:
        return ""
    try:
        key = read_secret(file, "", "DNS list access key")
    except SecretError as exc:
        raise _secret_error(model, "access_key_file", str(exc), file) from None
    if key is None:
        raise _secret_error(model, "access_key_file", f"{file}: the file is empty", file)
    if not ACCESS_KEY.fullmatch(key):
        raise _secret_error(model, "access_key_file", f"{file}: holds no access key a DNS name can "
                            "carry (the key is not shown, as it is a secret)", file)
    return key


def _secret_error(model: type[BaseModel], key: str, message: str, value: str) -> ValidationError:
    """A refusal of `key` of a list, raised once the list is built (it is about the key's
    file or the zone it goes with), that never repeats the value (OwnValue): it may hold the key."""
    error = PydanticCustomError("value_error", "Value error, {error}", {"error": OwnValue(message)})
    return ValidationError.from_exception_data(model.__name__, [
        InitErrorDetails(type=error, loc=(key,), input=value)])


class BlockList(DnsList):
    score: Annotated[float, Field(gt=0, le=100)] = Field(
        description="Points added for a listing when the network is used; the one place it is set.")


class AllowList(DnsList):
    score: Annotated[float, Field(ge=-100, lt=0)] = Field(
        description="Points taken off for a listing (negative) when the network is used.")


class DnsConfig(Section):
    enabled: bool = Field(
        False, description="Run the network checks (SPF, DKIM, DMARC, DNS lists, reverse DNS, "
        "sender domain) with the network score sets. Off by default: without a working resolver "
        "every message would wait for the timeout, and public lists refuse queries sent through "
        "big public resolvers, so point nameservers at your own resolver first.")
    nameservers: list[str] = Field(
        default_factory=list, description="Resolvers as IP or IP:PORT ([IPv6]:PORT); empty: "
        "those of /etc/resolv.conf.",
        json_schema_extra=_allowed_text('IP addresses with an optional :PORT, e.g. ["127.0.0.1", '
                                        '"[::1]:5353"]'))
    timeout: Annotated[float, Field(gt=0, le=60)] = Field(
        3.0, description="Seconds all DNS lookups of one message may take together; what has not "
        "answered by then counts as not hit and the fact DNS_TIMEOUT is recorded.")
    cache_size: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        50_000, description="Answers kept in memory (per process, honouring their TTL); a burst "
        "from one sender costs one lookup. 0: no cache.")
    max_uri_domains: Annotated[int, Field(ge=0, le=1000)] = Field(
        20, description="Domains looked up in URI lists per message, those of links (mailto: "
        "links included) first, then those written as text, own_domains left out; spam with "
        "hundreds of links must not turn into hundreds of queries.")
    authserv_id: str = Field(
        "", description="The name in Authentication-Results headers (RFC 8601 authserv-id); "
        "empty: the MX's name as Postfix gives it to the milter (myhostname), which downstream "
        "filters and mail clients expect; else this host's name as myhostname takes it by "
        "default.")
    blocklists: list[BlockList] = Field(
        default_factory=list, description="DNS block lists, each a [[dns.blocklists]] table; none "
        "by default because every list has its own terms of use.")
    allowlists: list[AllowList] = Field(
        default_factory=list, description="DNS allow lists, each a [[dns.allowlists]] table with a "
        "negative score.")

    _servers = field_validator("nameservers")(_nameservers)

    @field_validator("blocklists", "allowlists")
    @classmethod
    def _unique_rules(cls, values: list[DnsList], info: Any) -> list[DnsList]:
        """Each list is its own rule: two lists under one name (a copied [[dns.blocklists]] whose
        rule was not renamed) reported each other's listings and kept only the last one's score.
        Block lists are validated first, so the allow lists are checked against them too."""
        names = [entry.rule for entry in [*info.data.get("blocklists", []), *values]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names used by more than one list: {', '.join(duplicates)}")
        return values


# A Redis URL's database: none (0), or a number after the host, as redis-py reads it.
REDIS_DATABASE = re.compile(r"/?(\d+/?)?")
# What ends a URL's user part (# ? /) or is dropped from a URL by urllib (tab, CR, LF): in a
# password, the rest would be read as the host, port or database, or another password. A
# space is neither: redis-py reads 'redis://:pass word@host' as the password "pass word".
URL_SIGNS_IN_PASSWORD = re.compile(r"[#?/\t\r\n]")


def _redis_url(value: str) -> str:
    """A redis://, rediss:// or unix:// URL that redis-py reads as written, checked when the
    config loads. redis-py refuses a port out of range only when it connects (configtest said
    "bad Redis URL: Port out of range 0-65535", naming no key; the milter scored without Bayes),
    and reads some mistakes as something else without a word: a database that is no number
    (/x as database 0, /0/1 as 1), port 0 as 6379, and unix://redis.sock, which names no absolute
    path, as localhost:6379 over TCP. A password holding a sign a URL ends its parts at (# ? /)
    is read as a shorter password and the rest as the host, port or database, one holding a tab
    or line break as another password: it is refused by its own reason, as redis-py reads it
    percent-encoded. A space is read as written, and was used so: it is accepted."""
    after_scheme = value.partition("://")[2]
    userinfo = "" if after_scheme.startswith("/") else after_scheme.rpartition("@")[0]
    if URL_SIGNS_IN_PASSWORD.search(userinfo):
        raise ValueError("a password in a Redis URL must give # ? / and any tab or line break "
                         "percent-encoded (# as %23, ? as %3F, / as %2F), or be kept in password_file")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # a port that is no number or out of range, a broken [IPv6] host
        if "port" not in str(exc).lower():
            raise ValueError(f"not a URL: {exc}") from None
        port = 0
    if value.startswith("unix://"):
        if parts.hostname or not parts.path.startswith("/"):
            raise ValueError("a unix:// URL names the socket by its absolute path, as in "
                             "unix:///run/redis/redis.sock")
    elif port == 0:
        raise ValueError("the port of a Redis URL is a number from 1 to 65535, as in "
                         "redis://10.0.0.5:6379/0")
    elif not REDIS_DATABASE.fullmatch(parts.path):
        raise ValueError("the database of a Redis URL is a number after the host, as in "
                         "redis://10.0.0.5:6379/2 (none: database 0)")
    return value


def _redis_username() -> Any:
    return Field("", description="Redis ACL user; empty for the default user.")


def _redis_sentinels() -> Any:
    return Field(default_factory=list, description="Redis Sentinel HOST:PORT list; when set, the "
                 "master is found through them (fail-over).")


def _redis_sentinel_service() -> Any:
    return Field("mymaster", description="Name of the master the Sentinels watch.")


def _redis_cluster_nodes(what: str) -> Any:
    return Field(default_factory=list, description="HOST:PORT of some nodes of a Redis Cluster "
                 "(name more than one: any that answers gives the client the whole cluster). "
                 f"When set, {what} lives in the cluster, on the node that owns its key prefix, "
                 "and the URL only says redis:// or rediss:// (TLS).")


def _redis_tls_ca_file() -> Any:
    return Field("", description="CA bundle to verify a rediss:// server; empty: the system's.",
                 json_schema_extra=TLS_FILE_FORM)


def _redis_tls_cert_file() -> Any:
    return Field("", description="Client certificate for rediss:// (mutual TLS).",
                 json_schema_extra=TLS_FILE_FORM)


def _redis_tls_key_file() -> Any:
    return Field("", description="Key of the client certificate.", json_schema_extra=TLS_FILE_FORM)


def _redis_nodes(values: list[str], info: ValidationInfo, url_key: str) -> list[str]:
    """HOST:PORT lists (sentinels, cluster_nodes), checked when the config loads rather than on
    first use, so the milter does not start with a typo that leaves it without its store, one
    warning or tempfail at a time. They only mean something for a Redis URL."""
    for value in values:
        host_port(value)
    if values and not info.data.get(url_key, "").startswith(("redis://", "rediss://")):
        raise ValueError(f"needs a redis:// or rediss:// {url_key}")
    if values and info.field_name == "cluster_nodes" and info.data.get("sentinels"):
        raise ValueError(f"set either sentinels or cluster_nodes: the {url_key} is reached through "
                         "Sentinels or lives in a Redis Cluster, not both")
    return values


class BayesConfig(Section):
    enabled: bool = Field(True, description="Add the Bayes verdict to the score once enough mail "
                          "was learned.")
    store: str = Field(
        "sqlite:///var/lib/mailsift/bayes.sqlite", description="Where token counts live: "
        "sqlite:///PATH for one host, redis://HOST:PORT/DB, rediss:// (TLS) or unix:///PATH to "
        "share one model between mail hosts.",
        json_schema_extra=_allowed_text(f"sqlite:///PATH, or {REDIS_FORMS}"))
    key_prefix: str = Field("mailsift:", description="Prefix of every key (Redis) or namespace "
                            "(SQLite); a prefix per user or domain gives per-user Bayes.")
    username: str = _redis_username()
    password_file: str = Field("", description="File holding the Redis password (never put the "
                               "password itself in this file: configs get copied and pasted). "
                               "$MAILSIFT_REDIS_PASSWORD is used when this is empty.")
    sentinels: list[str] = _redis_sentinels()
    sentinel_service: str = _redis_sentinel_service()
    cluster_nodes: list[str] = _redis_cluster_nodes("the store")
    tls_ca_file: str = _redis_tls_ca_file()
    tls_cert_file: str = _redis_tls_cert_file()
    tls_key_file: str = _redis_tls_key_file()
    timeout: Annotated[float, Field(gt=0, le=30)] = Field(
        0.5, description="Seconds to wait for the store; a dead store must cost mail little. "
        "While it is down, messages are scored by rules alone and one warning is logged.")
    min_spam: Annotated[int, Field(ge=0)] = Field(
        200, description="Spam messages to learn before Bayes has a say; fewer give noisy "
        "verdicts (SpamAssassin uses the same figure).")
    min_ham: Annotated[int, Field(ge=0)] = Field(200, description="Ham messages to learn before "
                                                 "Bayes has a say.")
    # strength and max_tokens: 5-fold cross-validation on the benchmark train split only (each
    # fold learned on the other four), grid s x min_distance x max_tokens. Bayes-alone 1-AUC went
    # from 0.0726% (s 0.45, 150 tokens: SpamBayes' values) to 0.0439% (s 0.1, 300 tokens), and
    # rules + Bayes from 0.0458% to 0.0412% with one false positive fewer and the same misses.
    # A higher min_distance (0.375, as bogofilter) cut false positives further but missed
    # half as much spam again: kept at 0.1.
    strength: Annotated[float, Field(gt=0, le=10)] = Field(
        0.1, description="Robinson's s: how strongly a rarely seen token is pulled towards "
        "unknown_prob (cross-validated, see the comment in config.py).")
    unknown_prob: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.5, description="Robinson's x: the probability assumed for a token never seen.")
    min_distance: Annotated[float, Field(ge=0, lt=0.5)] = Field(
        0.1, description="Tokens whose probability is within this of 0.5 are ignored as noise.")
    max_tokens: Annotated[int, Field(ge=1, le=10000)] = Field(
        300, description="The most significant tokens combined per message.")
    # Measured on a validation quarter of the benchmark train split (trained on the other three):
    # Bayes-alone 1-AUC 0.0373% without word pairs, 0.0366% with them — within noise — while the
    # token count doubles. Off.
    bigrams: bool = Field(False, description="Also learn word pairs. Off: they doubled the tokens "
                          "for no measurable gain (see the comment in config.py).")
    token_ttl_days: Annotated[int, Field(ge=1)] = Field(
        180, description="Tokens not seen for this long are dropped (Redis expires them itself).")
    hapax_ttl_days: Annotated[int, Field(ge=1)] = Field(
        30, description="Tokens seen in one message only are dropped sooner: they are most of "
        "the store and rarely decide anything.")
    per_recipient: Literal["off", "domain", "address"] = Field(
        "off", description="Per-recipient Bayes: score a message with the store of the domain "
        "or address all its recipients share (key_prefix + DOMAIN or ADDRESS + ':'), trained "
        "with `mailsift learn --for` and by learning from the quarantine. Until that store has "
        "learned min_spam and min_ham messages, and for mail to several domains or addresses, "
        "the site-wide store decides. Autolearn teaches the site-wide store and, for mail to one "
        "domain or address, that one's store too.")
    pyzor: bool = Field(False, description="Also tell Pyzor's network on `learn --report` "
                        "(pyzor report) and `--revoke` (pyzor whitelist); needs the pyzor command "
                        "and its servers reachable.")

    def speaks(self, spam: int, ham: int) -> bool:
        """Whether Bayes gives a verdict after learning this much (min_spam and min_ham): the
        one test behind scoring, `learn --dump`, `configtest` and `eval`'s warning."""
        return spam >= self.min_spam and ham >= self.min_ham

    @property
    def sqlite_path(self) -> str | None:
        """The file of a sqlite:/// store, else None; "sqlite:////var/x" (SQLAlchemy's spelling
        of an absolute path) names /var/x too, and is shown so."""
        if not self.store.startswith(SQLITE_SCHEME):
            return None
        return "/" + self.store.removeprefix(SQLITE_SCHEME).lstrip("/")

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        """Checked when the config loads: a plain path or a mistyped scheme used to pass here and
        fail at the first lookup, as a "bad Redis URL" that named neither the file nor the key."""
        if value.startswith(SQLITE_SCHEME) and value != SQLITE_SCHEME:
            return value
        if value.startswith(REDIS_SCHEMES):
            return _redis_url(value)
        raise ValueError("must be sqlite:///PATH (one host) or a redis://, rediss:// or unix:// URL")

    @field_validator("sentinels", "cluster_nodes")
    @classmethod
    def _nodes(cls, values: list[str], info: ValidationInfo) -> list[str]:
        return _redis_nodes(values, info, "store")

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _tls_files(cls, value: str, info: ValidationInfo) -> str:
        return _used_tls_file(value, info, "store")


def host_port(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` as (host, port)."""
    host, port = split_host_port(value, default_port=-1)
    if not host or not 0 < port < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host, port


def _checked_host_port(value: str, example: str) -> str:
    """`value` if it is HOST:PORT with a port from 1 to 65535, checked when the config loads:
    web.listen = "127.0.0.1:99999" (or with no port) passed configtest and stopped `mailsift web`."""
    try:
        host_port(value)
    except ValueError:
        raise ValueError(f"must look like HOST:PORT, e.g. {example}") from None
    return value


# The signs besides letters and digits that an address's local part holds without quotes (RFC
# 5321's atext, and the dot of a dot-string): those a recipient_delimiter can be made of.
DELIMITER_SIGNS = "!#$%&'*+-/=?^_`{|}~."


class MilterConfig(Section):
    listen: str = Field(
        "inet:127.0.0.1:11332", description="Where Postfix connects: inet:HOST:PORT or "
        "unix:PATH (Postfix's own notation). smtpd_milters names it as `mailsift postfix` prints "
        "it: as written, but a socket inside Postfix's queue directory relative to it, where "
        "smtpd and cleanup run (chrooted on Debian, where the full path does not exist): "
        "unix:/var/spool/postfix/mailsift/milter.sock is unix:mailsift/milter.sock. On one host "
        "prefer a unix socket: over loopback TCP the milter's small packets meet Nagle and "
        "delayed ACKs (bench/milter.py measured 2.2x the throughput for a null milter).",
        json_schema_extra=_allowed_text("inet:HOST:PORT with a port from 1 to 65535, e.g. "
                                        "inet:127.0.0.1:11332, or unix:/PATH, e.g. "
                                        "unix:/var/spool/postfix/mailsift/milter.sock"))
    socket_mode: str = Field(
        "0660", description="Permissions of a unix: socket once it exists (octal). Postfix must "
        "be able to write it: put the postfix user in mailsift's group, or use 0666 on a "
        "single-purpose host.")
    workers: Annotated[int, Field(ge=0, le=256)] = Field(
        0, description="Scoring processes; 0 means one per CPU core. Scoring is CPU work and "
        "Python threads cannot share a core, hence processes.")
    timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        20.0, description="Seconds a message may take to score before on_error applies; keep it "
        "under Postfix's milter_content_timeout (300 s) so Postfix never gives up first. Under "
        "overload a message waits for a free worker at most half of it, so that it still has the "
        "other half to be scored in.")
    on_error: Literal["accept", "tempfail"] = Field(
        "accept", description="What happens to a message when scoring fails or times out: "
        "accept (delivered with X-Spam-Status: ... error) or tempfail (451, the client retries).")
    trusted: Literal["scan", "skip", "outbound"] = Field(
        "scan", description="Mail from trusted_networks: scan like any other, skip scanning, "
        "or scan with the [outbound] thresholds (a hosting provider stopping its customers' spam). "
        "scan by default: trusted_networks usually holds your own MX and relays, which pass "
        "inbound mail on, and judged as outbound that mail would lose its X-Spam headers and "
        "pause the relay after outbound.pause_after spams, deferring all inbound mail. Set "
        "outbound only when trusted_networks holds nothing but hosts sending your customers' "
        "own mail. With skip, such mail also keeps any Authentication-Results in our name (a "
        "host of yours wrote them); every other way, they are removed as forged.")
    authenticated: Literal["scan", "skip", "outbound"] = Field(
        "outbound", description="Mail from SASL-authenticated senders: as for trusted.")
    local: Literal["scan", "skip", "outbound"] = Field(
        "outbound", description="Mail local programs hand to Postfix's sendmail command (a web "
        "site's PHP mail(), cron), which reaches mailsift through non_smtpd_milters: as for "
        "trusted. On a hosting server it is the customers' own mail, and a compromised site's "
        "spam run comes this way; the pause counts it per envelope sender.")
    metrics_listen: str = Field(
        "", description="HOST:PORT for Prometheus metrics, e.g. 127.0.0.1:9185; empty: off. "
        "Only loopback addresses are accepted: metrics are not for the world.",
        json_schema_extra=_allowed_text("empty, or a loopback HOST:PORT, e.g. 127.0.0.1:9185 or [::1]:9185"))
    recipient_delimiter: str = Field(
        "", description="Postfix's recipient_delimiter, copied from main.cf (e.g. \"+\", or "
        "\"+-\" for both Postfix and qmail extensions): mail to jane+shop@example.com is then "
        "Jane's, as Postfix delivers it to her. Her welcome and block lists, a [[policy]] naming "
        "her address, per-recipient Bayes and the quarantine (her list, search, digest and web "
        "UI access) take it as hers; a list or policy of the subaddress itself comes first, as "
        "in Postfix's lookups, and a web "
        "user's address is a mailbox of its own, never cut (anne-marie@ with \"-\"). Empty, "
        "as Postfix's default: no subaddresses, each address is its own.",
        json_schema_extra=_allowed_text(
            'empty, or the characters of main.cf\'s recipient_delimiter, each a sign an address '
            'holds without quotes other than a letter or digit (' + DELIMITER_SIGNS + '), e.g. '
            '"+" or "+-"'))

    @field_validator("listen")
    @classmethod
    def _socket(cls, value: str) -> str:
        kind, _, rest = value.partition(":")
        if kind == "unix" and rest.startswith("/"):
            return value
        host, _, port = rest.rpartition(":")
        if kind == "inet" and host and port.isdigit() and 0 < int(port) < 65536:
            return value
        raise ValueError("must look like inet:HOST:PORT or unix:/PATH")

    @field_validator("socket_mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not (len(value) in (3, 4) and all(c in "01234567" for c in value)):
            raise ValueError("must be an octal mode such as 0660")
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _loopback(cls, value: str) -> str:
        if not value:
            return value
        try:  # the port too: 127.0.0.1:99999 passed, and the milter stopped with an internal error
            host, _ = host_port(value)
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError("must be a loopback HOST:PORT such as 127.0.0.1:9185")
        return value

    @field_validator("recipient_delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        """Each character one Postfix could cut a recipient's local part at (Postfix itself
        takes any and cuts at the first of them: see domains.Subaddressing). A letter or
        digit would cut ordinary names (alexander@ at "x": ale@), which no site means; Postfix
        would cut at each byte of a sign outside ASCII (strcspn); a space, '@' or a quote is in
        no local part outside quotes, so a value copied with main.cf's spaces or quotes would
        cut nothing, in silence."""
        for sign in value:
            if not sign.isascii():
                raise ValueError(f"{sign!r} is not ASCII: Postfix cuts at single bytes, and would "
                                 "cut at each byte of its UTF-8 form")
            if sign.isalnum():
                raise ValueError(f"{sign!r} is a letter or digit: ordinary names would be cut at "
                                 "it, their mail made another address's")
            if sign not in DELIMITER_SIGNS:
                raise ValueError(f"{sign!r} separates no extension: no address holds it outside "
                                 "quotes (write the characters of main.cf's value only, without "
                                 "spaces or quotes)")
        return value


def _never_if_false(value: object) -> object:
    """`quarantine = false`: TOML has no null, and leaving the key out means its default."""
    return math.inf if value is False else value


# A score at or above which an action is taken; false: never.
Threshold = Annotated[float | None, BeforeValidator(_never_if_false),
                      Field(json_schema_extra=_allowed_text("a number, or false to never take "
                                                            "this action"))]


class Thresholds(Section):
    """Scores at or above which each action is taken; None, or false (infinity), never triggers."""

    rewrite_subject: Threshold = Field(
        6.0, description="Tag the Subject. A little above required_score: borderline mail gets "
        "the X-Spam headers only.")
    quarantine: Threshold = Field(
        10.0, validate_default=True,  # checked against a rewrite_subject set above it
        description="Keep the message in quarantine instead of delivering it.")
    reject: Threshold = Field(
        15.0, validate_default=True, description="Refuse at SMTP time with 550 5.7.1: the sender "
        "learns it was refused, nobody has to review it.")

    @field_validator("quarantine", "reject")
    @classmethod
    def _above_milder_actions(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Thresholds out of order (quarantine 20, reject 10) silently made an action one that
        never happens: the stronger action takes every message the milder one would."""
        for milder in ("rewrite_subject", "quarantine"):
            below = info.data.get(milder)
            if milder != info.field_name and _taken(value) and _taken(below) and value <= below:
                raise ValueError(f"must be above {milder} ({below:g}), or {milder} never happens; "
                                 f"set {milder} = false to never take that action")
        return value


def _taken(threshold: float | None) -> bool:
    return threshold is not None and threshold != math.inf


def smtp_reply_text(value: str) -> str:
    """An SMTP reply is one line of printable US-ASCII (RFC 5321 4.2): a line break would end it
    early, and libmilter refuses other characters, so mail meant for that reply met on_error."""
    if not all(" " <= c <= "~" for c in value):
        raise ValueError("must be one line of printable ASCII (an SMTP reply)")
    return value


class ActionsConfig(Thresholds):
    subject_tag: str = Field("[SPAM]", description="Put in front of the Subject of tagged mail.")
    reject_text: str = Field(
        "Message rejected as spam", description="Text after 550 5.7.1 in the SMTP reply.")
    report_header: bool = Field(
        False, description="Also add X-Spam-Report with the rules that hit and their evidence.")

    _reply_text = field_validator("reject_text")(smtp_reply_text)

    @field_validator("subject_tag")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """A control character (a line break above all) would split or corrupt the Subject."""
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must be one line without control characters")
        return value


class OutboundConfig(Thresholds):
    """Thresholds for mail our own users send (see milter.trusted / milter.authenticated)."""

    rewrite_subject: Threshold = Field(None, description="Tagging outbound mail helps nobody.")
    quarantine: Threshold = Field(8.0, validate_default=True,
                                  description="Hold a customer's likely spam for review.")
    reject: Threshold = Field(12.0, validate_default=True,
                              description="Refuse a customer's obvious spam; their client shows "
                              "the 550 text.")
    pause_after: Annotated[int, Field(ge=0, le=100000)] = Field(
        10, description="After this many messages in pause_minutes at or above quarantine, defer "
        "(451) all mail of that sender (SASL login, or trusted client address) until the oldest "
        "leaves the window: a compromised account's spam run stalls; 0: never.")
    pause_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = Field(
        60, description="The window pause_after counts in.")
    pause_ipv6_prefix: Annotated[int, Field(ge=32, le=128)] = Field(
        64, description="A trusted client on IPv6 is counted by its network of this prefix "
        "length, not by its address: a host given a /64 (the usual customer server or VPS) can "
        "send from any of its 2^64 addresses, one per message, and would never be paused. 128 "
        "counts each address; lower it to the prefix each customer gets when that is wider; "
        "IPv4 clients are counted by address.")
    pause_text: str = Field(
        "Sending paused: too much of your recent mail looked like spam; it will resume by "
        "itself, or ask your provider", description="Text after 451 4.7.1 in the reply to a "
        "paused sender, which their mail client shows: a provider's help page or desk belongs "
        "here.")
    pause_store: str = Field(
        "", description="Where the pause_after counts live: empty for this milter host's memory "
        "(all one host needs; with N hosts a sender is paused on each by its own count, after up "
        "to N x pause_after); redis://HOST:PORT/DB (rediss://, unix:///PATH) for a Redis every "
        "milter host shares, so a sender is paused everywhere at once. While that Redis fails, "
        "each host counts in its own memory (one warning) and no mail waits for it.",
        json_schema_extra=_allowed_text("empty (this host's memory) or a redis://, rediss:// or "
                                        'unix:// URL, e.g. "redis://10.0.0.5:6379/0"'))
    pause_key_prefix: str = Field(
        "mailsift:pause:", description="Prefix of the pause counts' keys in that Redis; a prefix "
        "of their own lets several sites (or test runs) share one Redis.")
    password_file: str = Field("", description="File holding the Redis password of a redis:// "
                               "pause_store; $MAILSIFT_REDIS_PASSWORD is used when this is empty.")
    username: str = _redis_username()
    sentinels: list[str] = _redis_sentinels()
    sentinel_service: str = _redis_sentinel_service()
    cluster_nodes: list[str] = _redis_cluster_nodes("every pause count")
    tls_ca_file: str = _redis_tls_ca_file()
    tls_cert_file: str = _redis_tls_cert_file()
    tls_key_file: str = _redis_tls_key_file()
    add_headers: bool = Field(False, description="Add X-Spam-* and Authentication-Results to "
                              "outbound mail too. Off: they would tell a spamming customer, and "
                              "every recipient, which rules to dodge. X-Spam-* headers the sender "
                              "wrote, and Authentication-Results in our name, are removed "
                              "either way, so no mail vouches for itself.")

    _reply_text = field_validator("pause_text")(smtp_reply_text)

    @field_validator("pause_store")
    @classmethod
    def _pause_store(cls, value: str) -> str:
        if value and not value.startswith(REDIS_SCHEMES):
            raise ValueError("must be empty (count in this host's memory) or a redis://, rediss:// "
                             "or unix:// URL")
        return value and _redis_url(value)

    @field_validator("sentinels", "cluster_nodes")
    @classmethod
    def _nodes(cls, values: list[str], info: ValidationInfo) -> list[str]:
        return _redis_nodes(values, info, "pause_store")

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _tls_files(cls, value: str, info: ValidationInfo) -> str:
        return _used_tls_file(value, info, "pause_store")


class Policy(Section):
    """Overrides for some recipients, addressed as user@domain, @domain or domain."""

    match: Annotated[list[str], Field(min_length=1)] = Field(
        description="Recipients this policy is for: user@example.org, @example.org or example.org.",
        json_schema_extra=_allowed_text('a non-empty list of user@example.org, @example.org (the '
                                        'domain) or example.org (with its subdomains)'))
    bypass: bool = Field(False, description="Do not scan mail to these recipients at all.")
    rewrite_subject: Threshold = Field(None, description="Override; false: never; left out: "
                                       "the global value.")
    quarantine: Threshold = Field(None, description="Override; false: never; left out: the "
                                  "global value.")
    reject: Threshold = Field(None, description="Override; false: never; left out: the global "
                              "value.")
    no_reject: bool = Field(False, description="Never reject for these recipients (quarantine "
                            "instead), e.g. for abuse@ and postmaster@.")

    @field_validator("match")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        return [_recipient_pattern(v) for v in values]


LIST_FORM = _allowed_text('addresses or domains (a domain covers its subdomains), e.g. '
                          '["billing@bank.example", "partner.example"]')


class ListsConfig(Section):
    """The site's own welcome and block lists, for every recipient (rules/checks/sitelists.py)."""

    welcome: list[str] = Field(
        default_factory=list, description="Senders welcomed for every recipient (SITE_IN_WELCOMELIST, "
        "-100) when SPF passes for them or a DKIM signature of their domain verifies: spam forges "
        "banks and partners, so an unconfirmed sender only shows as SITE_WELCOME_UNVERIFIED. "
        "whitelist_from lines of local.cf add to it.", json_schema_extra=LIST_FORM)
    block: list[str] = Field(
        default_factory=list, description="Senders blocked for every recipient (SITE_IN_BLOCKLIST, "
        "+100), by envelope sender or From, with no proof asked: forging a blocked sender gains a "
        "spammer nothing. blacklist_from lines of local.cf add to it.", json_schema_extra=LIST_FORM)

    @field_validator("welcome", "block")
    @classmethod
    def _entries(cls, values: list[str]) -> list[str]:
        """Each an address or a domain as `list_entry` stores it, the one form the web UI and
        local.cf's welcome and block lines take too: each had its own rules, and an entry one
        took another refused. What no sender can match (a wildcard, an IP address) stops start-up
        with what to write instead, rather than welcoming or blocking nobody in silence."""
        return [list_entry(v) for v in values]


class QuarantineConfig(Section):
    dir: str = Field("/var/lib/mailsift/quarantine", description="Where quarantined messages "
                     "are kept, one file each, written atomically.")
    index: str = Field(
        "", description="Where the searchable index (metadata, action history, users' welcome and "
        "block lists) lives: empty for DIR/index.sqlite on this host; redis://HOST:PORT/DB "
        "(rediss://, unix:///PATH) to share one quarantine, messages included, between mail hosts.",
        json_schema_extra=_allowed_text(f"empty, or {REDIS_FORMS}"))
    password_file: str = Field("", description="File holding the Redis password of a redis:// "
                               "index; $MAILSIFT_REDIS_PASSWORD is used when this is empty.")
    username: str = _redis_username()
    sentinels: list[str] = _redis_sentinels()
    sentinel_service: str = _redis_sentinel_service()
    cluster_nodes: list[str] = _redis_cluster_nodes("the whole quarantine")
    tls_ca_file: str = _redis_tls_ca_file()
    tls_cert_file: str = _redis_tls_cert_file()
    tls_key_file: str = _redis_tls_key_file()
    keep_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        30, description="Days a message is kept before `mailsift quarantine expire` deletes it; a "
        "month covers a holiday, after which nobody asks for a lost mail any more.")
    release_via: str = Field(
        "127.0.0.1:10026", description="HOST:PORT of the Postfix smtpd without the milter (see "
        "`mailsift postfix`): released mail and digests enter there, so they are not caught again.",
        json_schema_extra=_allowed_text("HOST:PORT, e.g. 127.0.0.1:10026 or [::1]:10026"))
    digest_from: str = Field("postmaster@localhost", description="Envelope and From address of "
                             "the daily digest mails.")

    @field_validator("index")
    @classmethod
    def _index(cls, value: str) -> str:
        if value and not value.startswith(REDIS_SCHEMES):
            raise ValueError("must be empty (local index) or a redis://, rediss:// or unix:// URL")
        return value and _redis_url(value)

    @field_validator("sentinels", "cluster_nodes")
    @classmethod
    def _nodes(cls, values: list[str], info: ValidationInfo) -> list[str]:
        return _redis_nodes(values, info, "index")

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _tls_files(cls, value: str, info: ValidationInfo) -> str:
        return _used_tls_file(value, info, "index")

    @field_validator("release_via")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return _checked_host_port(value, "127.0.0.1:10026")


# What a reviewer can do to a held message (mailsift.web.app.ACTIONS labels each).
ReviewAction = Literal["release", "release-ham", "delete", "spam", "ham", "forget", "spam-report",
                       "ham-revoke"]
# Reports and revokes change what every host matches (DIGEST_REPORTED): admins only, unless a
# site says otherwise.
USER_ACTIONS: list[ReviewAction] = ["release", "release-ham", "delete", "spam", "ham", "forget"]


class WebUser(Section):
    """One login of the review UI; the hash comes from `mailsift web hash-password`."""

    name: str = Field(description="Login name.",
                      json_schema_extra=_allowed_text('a login name, e.g. "jane"'))
    password_hash: str = Field(description="argon2 hash of the password (never the password).",
                               json_schema_extra=_allowed_text(
                                   "the whole line `mailsift web hash-password` prints, "
                                   "$argon2id$v=19$m=...,t=...,p=...$SALT$HASH"))
    role: Literal["admin", "user"] = Field("user", description="admin: every message and "
                                           "action; user: only mail to their own addresses.")
    addresses: list[str] = Field(default_factory=list, validate_default=True,
                                 description="The user's mail addresses: what they may see, and "
                                 "where their digest goes; a user (role user) needs at least one.",
                                 json_schema_extra=_allowed_text('full mail addresses, e.g. '
                                                                 '["jane@example.org"]'))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """Trimmed as the login form's name is: " jane" could never log in. Empty is no name."""
        if not value.strip():
            raise ValueError("a login needs a name")
        return value.strip()

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        """The hash as argon2 reads it. One cut short or changed in copying was accepted and
        then refused every password, so its user could never log in and nothing said why.
        Refused without the value (`OwnValue`): what stands here is often the password itself,
        and the error line goes to the terminal, configtest's output and the service's journal."""
        value = value.strip()
        if not value.startswith("$argon2"):
            raise OwnValue("must be an argon2 hash from `mailsift web hash-password`, never the "
                           "password itself (the value is not shown, as it may be one)")
        if not ARGON2_HASH.fullmatch(value):
            raise OwnValue("not a whole argon2 hash (cut short or changed in copying?): paste "
                           "the line `mailsift web hash-password` prints")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str], info: ValidationInfo) -> list[str]:
        """A user sees only mail to their addresses: one without any logged in to an empty
        list, with no word why."""
        if not values and info.data.get("role") == "user":
            raise ValueError("a user (role user) sees only mail to their addresses: give at "
                             "least one, or role = \"admin\"")
        return [mail_address(v) for v in values]


# The PHC string argon2 writes: $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH (base64, no padding).
ARGON2_HASH = re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


class WebConfig(Section):
    listen: str = Field("127.0.0.1:8025", description="HOST:PORT of the review UI; loopback by "
                        "default: put a TLS reverse proxy in front to reach it from elsewhere.",
                        json_schema_extra=_allowed_text("HOST:PORT, e.g. 127.0.0.1:8025, or :PORT "
                                                        "for every address"))
    base_url: str = Field("", description="The UI's address as users reach it, for the links in "
                          "digests; empty: http://LISTEN, with this host's name for a listen on "
                          "every address (\":8025\"). configtest says when the links would lead "
                          "to a loopback address, which no user's browser reaches.")
    secret_file: str = Field(
        "", description="File holding the session signing secret, at least 16 characters (e.g. "
        "from `head -c 32 /dev/urandom | base64`); $MAILSIFT_WEB_SECRET when empty; neither: a "
        "random one per start (everyone logs in again after a restart).")
    secure_cookies: bool = Field(True, description="Mark the session cookie Secure: sent over "
                                 "HTTPS only (browsers allow it on http://127.0.0.1 and localhost "
                                 "too, e.g. through an SSH tunnel); off only for plain-http tests. "
                                 "A request that came over https gets a Secure cookie either way.")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks of the reverse proxies in front "
        "of the UI, whose X-Forwarded-For and X-Forwarded-Proto headers are believed: they give "
        "the client address that login throttling and the log go by, and whether the request "
        "came over https (then HSTS and a Secure cookie). Empty: no forwarded header is believed, "
        "as anyone who connects could write one; behind a proxy every login then comes from the "
        "proxy's address, so one client's failed logins slow everyone's.",
        json_schema_extra=_allowed_text('IP addresses or networks of your proxies, e.g. '
                                        '["127.0.0.1", "::1", "10.0.0.0/24"]'))
    session_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = Field(
        480, description="A login lasts this long (a working day), then it must be renewed.")
    login_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="Wrong passwords per user and client address before logins are slowed; "
        "four times as many from one address, whatever the names, slow that address (password "
        "spraying).")
    login_delay: Annotated[float, Field(gt=0, le=3600)] = Field(
        30.0, description="Seconds a slowed login must wait, doubled for every further failure.")
    page_size: Annotated[int, Field(ge=5, le=1000)] = Field(50, description="Messages per page.")
    user_actions: list[ReviewAction] = Field(
        default_factory=lambda: list(USER_ACTIONS), description="What a user (role user) may do "
        "to mail held for them; admins may do everything. spam-report and ham-revoke share or "
        "withdraw a message's digests on every host, so they are left to admins. Where users must "
        "not teach the site's Bayes (a hosting provider's customers), keep only release and delete.")
    users: list[WebUser] = Field(default_factory=list, description="Logins, each a [[web.users]] "
                                 "table; the UI refuses to start without an admin.",
                                 json_schema_extra=_allowed_text("[[web.users]] tables, each "
                                                                 "with a name of its own"))

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        """HOST:PORT, or :PORT for every address, as uvicorn reads an empty host: that form
        served the UI before this check existed, so it still does."""
        if value.startswith(":"):
            _checked_host_port("0.0.0.0" + value, "127.0.0.1:8025")
            return value
        return _checked_host_port(value, "127.0.0.1:8025")

    @field_validator("users")
    @classmethod
    def _one_login_per_name(cls, users: list[WebUser]) -> list[WebUser]:
        """Logins go by name, to the first user of that name: a second one could never log in
        (nor its addresses' owner see their mail), and nothing said why."""
        names = [user.name for user in users]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise OwnValue(f"{names.count(twice)} users are named {twice!r}; only the first "
                           "could log in")
        return users

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, values: list[str]) -> list[str]:
        """Each as the network uvicorn reads: a value it cannot parse it would keep as a literal
        name that no client address ever equals, and its proxy would silently go unbelieved."""
        return [_proxy_network(v) for v in values]


def _proxy_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network") from None


class AutolearnConfig(Section):
    enabled: bool = Field(True, description="Teach Bayes from clear verdicts, as SpamAssassin's "
                          "autolearn does.")
    spam_score: float = Field(12.0, description="Learn as spam at or above this score counted "
                              "without Bayes: only mail the rules alone find clearly spam.")
    ham_score: float = Field(0.1, description="Learn as ham at or below this score without Bayes.")
    outbound: bool = Field(False, description="Also learn from mail judged as outbound "
                           "(milter.authenticated or milter.trusted = \"outbound\"). Off, as "
                           "a customer could otherwise teach the Bayes that judges inbound mail "
                           "that their spam is ham, simply by sending it.")


class Config(Section):
    scoring: ScoringConfig = ScoringConfig()
    scan: ScanConfig = ScanConfig()
    rules: RulesConfig = RulesConfig()
    network: NetworkConfig = NetworkConfig()
    dns: DnsConfig = DnsConfig()
    bayes: BayesConfig = BayesConfig()
    milter: MilterConfig = MilterConfig()
    actions: ActionsConfig = ActionsConfig()
    outbound: OutboundConfig = OutboundConfig()
    policy: list[Policy] = Field(default_factory=list)
    lists: ListsConfig = ListsConfig()
    quarantine: QuarantineConfig = QuarantineConfig()
    autolearn: AutolearnConfig = AutolearnConfig()
    web: WebConfig = WebConfig()
    source: str = Field("built-in defaults", exclude=True)

    @cached_property
    def subaddressing(self) -> Subaddressing:
        """Whose a recipient is (milter.recipient_delimiter), for every per-recipient decision:
        the web users' addresses are mailboxes of their own, which the delimiter does not cut
        (anne-marie@ is not anne@'s with "-" when it is a login's address). Made once: the
        milter asks for every recipient of every message."""
        return Subaddressing(self.milter.recipient_delimiter, frozenset(
            ascii_address(address) for user in self.web.users for address in user.addresses))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Config:
        """A copy, made without `subaddressing` as this one made it: pydantic copies what a
        cached_property holds, and a copy with other users or another delimiter would have
        kept this one's."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("subaddressing", None)
        return copied


def _model_of(annotation: object) -> type[BaseModel] | None:
    """The section model behind an annotation: `Model`, `list[Model]` or `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _describe_type(annotation: object) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is list:
        inner = _describe_type(args[0]).removeprefix("a ").removeprefix("an ") if args else ""
        if inner.startswith("one of "):
            return f"a list, each {inner}"
        return f"a list of {inner}s" if inner else "a list"
    if args:
        base = " or ".join(_describe_type(a) for a in args)
        return f"{base} (or leave it out)" if type(None) in get_args(annotation) else base
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))  # type: ignore[call-overload]


def _walk(path: tuple[str | int, ...]) -> tuple[type[BaseModel], str | None]:
    """The model that holds the last key of `path`, and that key (None if path ends in a section)."""
    model: type[BaseModel] = Config
    for key in path[:-1]:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(key)
        inner = _model_of(field.annotation) if field else None
        if inner is None:
            return model, key
        model = inner
    last = path[-1] if path else None
    return model, last if isinstance(last, str) else None


def _allowed(path: tuple[str | int, ...]) -> str:
    """Describe what a key accepts, from the model's own field declaration."""
    model, key = _walk(path)
    field = model.model_fields.get(key or "")
    if field is None:
        return "keys: " + ", ".join(_keys(model))
    if isinstance(field.json_schema_extra, dict) and "allowed" in field.json_schema_extra:
        return str(field.json_schema_extra["allowed"])
    bounds = []
    for meta in field.metadata:
        for attr, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                bounds.append(f"{word} {getattr(meta, attr)}")
    return f"{_describe_type(field.annotation)} {' and '.join(bounds)}".strip()


def _keys(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if k != "source"]


def _explain(error: dict[str, Any], source: str) -> str:
    path = tuple(error["loc"])
    key = ".".join(str(p) for p in path)
    if error["type"] == "extra_forbidden":
        known = _keys(_walk(path)[0])
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{source}: unknown key '{key}'{hint}; allowed here: {', '.join(known)}"
    own = isinstance(error.get("ctx", {}).get("error"), OwnValue)
    got = "" if own else f" (got {_quoted(error.get('input'))})"
    # pydantic's "Input should be 'release', 'release-ham', ... or 'ham-revoke'" said again all
    # that "allowed:" lists after it, in a line twice as long.
    message = ("not one of those allowed" if error["type"] == "literal_error"
               else error["msg"].removeprefix("Value error, "))
    return masked_urls(f"{source}: {key}: {message}{got}; allowed: {_allowed(path)}")


def _quoted(value: Any) -> str:
    """A refused value as a config error repeats it, a table by its keys alone: written where a
    list goes (`[dns.blocklists]` for `[[dns.blocklists]]`, an easy slip) it was repeated whole,
    with a DNS list's access key or a user's password hash, into terminals, logs and tickets."""
    if isinstance(value, dict):
        return f"a table of {', '.join(map(str, value))}" if value else "an empty table"
    if isinstance(value, list):
        return f"[{', '.join(_quoted(item) for item in value)}]"
    return repr(value)


def parse_config(data: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(_explain(exc.errors()[0], source)) from None


def config_path(explicit: str | None = None) -> Path | None:
    """The file to read: the command line, then the environment, then the system path if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("MAILSIFT_CONFIG")
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


def _toml_hint(error: tomllib.TOMLDecodeError) -> str:
    """What to do about tomllib's "Cannot mutate immutable namespace": a key given with `=` that
    a [table] or [[table]] header adds to again. Uncommenting an example [[policy]] of
    mailsift.example.toml and keeping its `policy = []` line does this."""
    found = re.search(r"Cannot mutate immutable namespace \((.*?)\)", str(error))
    if found is None:
        return ""
    name = ".".join(re.findall(r"'([^']*)'", found[1]))
    last = name.rpartition(".")[2]
    return (f"; '{name}' is set with `{last} = ...` and again as a table: keep one (to use "
            f"[[{name}]] tables, delete the `{last} = []` line)")


def _config_text(path: Path) -> str:
    """The file as text. TOML is UTF-8 only; a Latin-1 byte (an accented name in a comment, from
    an old editor) must say where it is, not end as a bare UnicodeDecodeError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, "
                          f"offset {exc.start}); TOML files must be saved as UTF-8") from None


def load_config(explicit: str | None = None) -> Config:
    path = config_path(explicit)
    if path is None:
        return Config()
    text = _config_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}{_toml_hint(exc)}") from None
    except RecursionError:  # tomllib reads nested arrays and inline tables by recursion
        raise ConfigError(f"{path}: not valid TOML for mailsift: arrays or inline tables "
                          "nested too deep to read") from None
    return parse_config(data, str(path))
