"""The configuration file: defaults, the documented example, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mailsift.config import Config, ConfigError, load_config, parse_config
from mailsift.milter.actions import Action, action_for, limits_for
from mailsift.redis_connect import connector, settings_for
from tests.training.test_learn_command import listing_as_nobody

EXAMPLE = Path(__file__).parent.parent / "mailsift.example.toml"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"  # the form; never checked here


def _defaults(model: type, prefix: str = "") -> dict[str, object]:
    found: dict[str, object] = {}
    for name, field in model.model_fields.items():
        if name == "source":
            continue
        if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields"):
            found.update(_defaults(field.annotation, f"{prefix}{name}."))
        else:
            found[prefix + name] = field.get_default(call_default_factory=True)
    return found


def _flatten(data: dict[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def test_example_documents_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text()
    defaults = _defaults(Config)
    unset = {key for key, value in defaults.items() if value is None}
    assert _flatten(tomllib.loads(text)) == {k: v for k, v in defaults.items() if k not in unset}
    for key in unset:  # TOML has no null: such keys are shown commented out
        assert f"# {key.rpartition('.')[2]} = " in text, key


def test_example_loads() -> None:
    assert load_config(str(EXAMPLE)).scan.max_bytes == 1024 * 1024


EXAMPLE_LINE = "#   "  # how the example's commented [[...]] tables are indented


def _commented_tables(lines: list[str]) -> list[tuple[str, range]]:
    """Each commented `[[NAME]]` example of the file: NAME and its lines (header to last key)."""
    found: list[tuple[str, range]] = []
    for start, line in enumerate(lines):
        header = line.removeprefix(EXAMPLE_LINE)
        if line.startswith(EXAMPLE_LINE) and header.startswith("[["):
            end = start + 1
            while (end < len(lines) and lines[end].startswith(EXAMPLE_LINE)
                   and not lines[end].removeprefix(EXAMPLE_LINE).startswith("[")):
                end += 1
            found.append((header.strip().strip("[]"), range(start, end)))
    return found


def _uncommented(name: str, block: range) -> str:
    """The example file as an admin makes it to use one example, following its own comments:
    delete the `NAME = []` line above the example (one below it is left: the file does not say
    to delete that one), uncomment the example, and put in the hash `mailsift web hash-password`
    made where the file says so (its "$argon2id$..." is no hash: no password would match it)."""
    lines = EXAMPLE.read_text().replace('"$argon2id$..."', f'"{ARGON2}"').replace(
        '"$argon2id$v=19$m=65536,t=3,p=4$..."', f'"{ARGON2}"').splitlines()
    edited = [line.removeprefix(EXAMPLE_LINE) if n in block else line for n, line in enumerate(lines)]
    defaults = [n for n in range(block.start) if lines[n] == f"{name.rpartition('.')[2]} = []"]
    if defaults:
        del edited[defaults[-1]]
    return "\n".join(edited) + "\n"


EXAMPLE_TABLES = _commented_tables(EXAMPLE.read_text().splitlines())


def test_the_example_has_commented_tables_for_every_list_of_tables() -> None:
    assert {name for name, _ in EXAMPLE_TABLES} == {"policy", "dns.blocklists", "dns.allowlists",
                                                     "web.users"}


@pytest.mark.parametrize(("name", "block"), EXAMPLE_TABLES,
                         ids=[f"{name}@{block.start + 1}" for name, block in EXAMPLE_TABLES])
def test_uncommenting_an_example_table_gives_a_valid_config(tmp_path: Path, name: str,
                                                            block: range) -> None:
    path = tmp_path / "mailsift.toml"
    path.write_text(_uncommented(name, block))
    config = load_config(str(path))
    section, _, key = name.rpartition(".")
    entries = getattr(getattr(config, section), key) if section else getattr(config, key)
    assert len(entries) == 1


def test_no_file_means_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MAILSIFT_CONFIG", raising=False)
    monkeypatch.setattr("mailsift.config.SYSTEM_CONFIG", tmp_path / "absent.toml")
    assert load_config(None) == Config()


def test_environment_variable_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[scoring]\nrequired_score = 6.5\n")
    monkeypatch.setenv("MAILSIFT_CONFIG", str(path))
    assert load_config(None).scoring.required_score == 6.5


def test_a_web_user_is_kept_as_its_login_goes_by_it() -> None:
    """Names and hashes trimmed, as the login form's name is and as argon2 reads a hash: an
    admin without addresses is fine (they see every message)."""
    config = parse_config({"web": {"users": [{"name": " admin ", "password_hash": f" {ARGON2}\n",
                                              "role": "admin"}]}}, "m.toml")
    assert (config.web.users[0].name, config.web.users[0].password_hash) == ("admin", ARGON2)


def test_recipient_patterns_and_user_addresses_are_kept_lowercased_and_trimmed() -> None:
    """As the milter compares them: recipients arrive lowercased, without <>."""
    config = parse_config({"policy": [{"match": [" Abuse@Example.ORG", "@Lists.Example.org",
                                                 "Example.NET."]}],
                           "web": {"users": [{"name": "jane", "password_hash": ARGON2,
                                              "addresses": [" Jane@Example.org "]}]}}, "m.toml")
    assert config.policy[0].match == ["abuse@example.org", "@lists.example.org", "example.net"]
    assert config.web.users[0].addresses == ["jane@example.org"]


def test_trusted_proxies_are_kept_as_the_networks_uvicorn_reads() -> None:
    """uvicorn takes a network with host bits set ("10.0.0.5/24") for a literal name no client
    address equals: that proxy's forwarded headers would be ignored without a word."""
    config = parse_config({"web": {"trusted_proxies": ["127.0.0.1", "::1", "10.0.0.5/24"]}}, "m.toml")
    assert config.web.trusted_proxies == ["127.0.0.1/32", "::1/128", "10.0.0.0/24"]
    assert Config().web.trusted_proxies == []


@pytest.mark.parametrize(("data", "expected"), [
    ({"scna": {}}, "unknown key 'scna' (did you mean 'scan'?)"),
    ({"scan": {"max_byte": 1}}, "unknown key 'scan.max_byte' (did you mean 'max_bytes'?)"),
    ({"scan": {"max_bytes": -5}}, "scan.max_bytes: "),
    ({"scan": {"max_bytes": "big"}}, "allowed: an integer >= 16384 and <= 268435456"),
    ({"scoring": {"required_score": "5"}}, "scoring.required_score"),
    ({"network": {"trusted_networks": ["10.0.0.x"]}}, "network.trusted_networks"),
    ({"rules": {"paths": ["/etc/mailsift/rulez"]}},  # it said only "allowed: a list of strings"
     "rules.paths: /etc/mailsift/rulez: no such file or directory (got ['/etc/mailsift/rulez']); "
     'allowed: existing rule files or folders (every *.cf in them), e.g. ["/etc/mailsift/rules.d"]'),
    ({"bayes": {"store": "redis://", "cluster_nodes": ["10.0.0.1:6379", "10.0.0.2"]}},
     "bayes.cluster_nodes: '10.0.0.2' is not HOST:PORT"),
    ({"bayes": {"store": "redis://", "sentinels": ["[::1]:99999"]}},
     "bayes.sentinels: '[::1]:99999' is not HOST:PORT"),
    ({"bayes": {"cluster_nodes": ["10.0.0.1:6379"]}},
     "bayes.cluster_nodes: needs a redis:// or rediss:// store"),
    ({"bayes": {"store": "redis://", "sentinels": ["10.0.0.1:26379"],
                "cluster_nodes": ["10.0.0.1:6379"]}},
     "bayes.cluster_nodes: set either sentinels or cluster_nodes"),
    ({"bayes": {"store": "mysql://x"}},
     "bayes.store: must be sqlite:///PATH (one host) or a redis://, rediss:// or unix:// URL"),
    ({"bayes": {"store": "sqlite:///"}}, "bayes.store: must be sqlite:///PATH"),
    # Redis URLs redis-py refused only on connecting (configtest: "bad Redis URL: Port out of
    # range 0-65535", no key named; the milter scored without Bayes), or read as another Redis.
    ({"bayes": {"store": "redis://10.0.0.5:99999/0"}},
     "bayes.store: the port of a Redis URL is a number from 1 to 65535, as in redis://10.0.0.5:6379/0"),
    ({"bayes": {"store": "redis://10.0.0.5:0/0"}}, "bayes.store: the port of a Redis URL is a number"),
    ({"quarantine": {"index": "redis://10.0.0.5:6379/x"}},  # was database 0
     "quarantine.index: the database of a Redis URL is a number after the host, as in "
     "redis://10.0.0.5:6379/2 (none: database 0)"),
    ({"bayes": {"store": "redis://10.0.0.5:6379/0/1"}}, "bayes.store: the database of a Redis URL"),
    ({"outbound": {"pause_store": "unix://redis.sock"}},  # was localhost:6379 over TCP
     "outbound.pause_store: a unix:// URL names the socket by its absolute path, as in "
     "unix:///run/redis/redis.sock"),
    ({"bayes": {"store": "redis://[::1/0"}}, "bayes.store: not a URL: Invalid IPv6 URL"),
    # A password with a sign a URL parser stops at was read as a port or database: 'redis://:
    # pa#ss@10.0.0.5:6379/0' said "the port of a Redis URL is a number from 1 to 65535".
    ({"bayes": {"store": "redis://:pa#ss@10.0.0.5:6379/0"}},
     "bayes.store: a password in a Redis URL must give # ? / and any tab or line break "
     "percent-encoded (# as %23, ? as %3F, / as %2F), or be kept in password_file"),
    ({"quarantine": {"index": "redis://jane:pa/ss@10.0.0.5:6379/0"}},
     "quarantine.index: a password in a Redis URL must give # ? / and any tab or line break percent-encoded"),
    ({"outbound": {"pause_store": "rediss://:p?ss@10.0.0.5:6379/0"}},
     "outbound.pause_store: a password in a Redis URL must give # ? / and any tab or line break"),
    # urllib drops a tab or line break from a URL: it would be another password
    ({"bayes": {"store": "redis://:pass\tword@10.0.0.5:6379/0"}},
     "bayes.store: a password in a Redis URL must give # ? / and any tab or line break percent-encoded"),
    # A missing TLS file showed only on connecting, as "Error 2 connecting to 10.0.0.5:6379. No
    # such file or directory": the Redis seemed to be what was missing.
    ({"bayes": {"store": "rediss://10.0.0.5:6379/0", "tls_ca_file": "/etc/mailsift/no-ca.pem"}},
     "bayes.tls_ca_file: /etc/mailsift/no-ca.pem: no such file or directory (got "
     "'/etc/mailsift/no-ca.pem'); allowed: empty, or the path of an existing file"),
    ({"quarantine": {"index": "rediss://", "tls_key_file": "/etc/mailsift/no.key"}},
     "quarantine.tls_key_file: /etc/mailsift/no.key: no such file or directory"),
    ({"outbound": {"pause_store": "rediss://", "tls_cert_file": "/etc/mailsift/no.crt"}},
     "outbound.tls_cert_file: /etc/mailsift/no.crt: no such file or directory"),
    ({"quarantine": {"release_via": "127.0.0.1"}},
     "quarantine.release_via: must look like HOST:PORT, e.g. 127.0.0.1:10026"),
    # A port out of range passed: the milter started its workers, then stopped with "internal
    # error: ValueError"; `mailsift web` stopped, after configtest had said ok.
    ({"milter": {"metrics_listen": "127.0.0.1:99999"}},
     "milter.metrics_listen: must be a loopback HOST:PORT such as 127.0.0.1:9185"),
    ({"milter": {"metrics_listen": "::1:9185"}}, "milter.metrics_listen: must be a loopback HOST:PORT"),
    ({"milter": {"metrics_listen": "192.0.2.1:9185"}}, "milter.metrics_listen: must be a loopback"),
    ({"web": {"listen": "127.0.0.1:99999"}}, "web.listen: must look like HOST:PORT, e.g. 127.0.0.1:8025"),
    ({"web": {"listen": "127.0.0.1"}}, "web.listen: must look like HOST:PORT, e.g. 127.0.0.1:8025"),
    # What is allowed was "a string", which said nothing the reason had not.
    ({"web": {"listen": "127.0.0.1"}}, "(got '127.0.0.1'); allowed: HOST:PORT, e.g. 127.0.0.1:8025, "
     "or :PORT for every address"),
    ({"milter": {"metrics_listen": "localhost"}}, "(got 'localhost'); allowed: empty, or a loopback "
     "HOST:PORT, e.g. 127.0.0.1:9185 or [::1]:9185"),
    ({"quarantine": {"release_via": "10026"}}, "(got '10026'); allowed: HOST:PORT, e.g. "
     "127.0.0.1:10026 or [::1]:10026"),
    ({"quarantine": {"index": "redis://10.0.0.5:0/0"}}, "(got 'redis://10.0.0.5:0/0'); allowed: "
     "empty, or redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS) or unix:///PATH"),
    ({"quarantine": {"sentinels": ["127.0.0.1:26379"]}},
     "quarantine.sentinels: needs a redis:// or rediss:// index"),
    ({"quarantine": {"cluster_nodes": ["127.0.0.1:7000"]}},
     "quarantine.cluster_nodes: needs a redis:// or rediss:// index"),
    ({"quarantine": {"index": "redis://", "sentinels": ["10.0.0.1:26379"],
                     "cluster_nodes": ["10.0.0.1:6379"]}},
     "quarantine.cluster_nodes: set either sentinels or cluster_nodes: the index is reached"),
    ({"outbound": {"pause_store": "memcached://10.0.0.5"}},
     "outbound.pause_store: must be empty (count in this host's memory) or a redis://, rediss:// "
     "or unix:// URL (got 'memcached://10.0.0.5'); allowed: empty (this host's memory) or a "
     'redis://, rediss:// or unix:// URL, e.g. "redis://10.0.0.5:6379/0"'),
    ({"outbound": {"sentinels": ["127.0.0.1:26379"]}},
     "outbound.sentinels: needs a redis:// or rediss:// pause_store"),
    ({"outbound": {"pause_store": "redis://", "cluster_nodes": ["10.0.0.1"]}},
     "outbound.cluster_nodes: '10.0.0.1' is not HOST:PORT"),
    ({"actions": {"reject_text": "Rejected\r\n250 OK"}},
     "actions.reject_text: must be one line of printable ASCII (an SMTP reply)"),
    ({"actions": {"reject_text": "Rejeté comme spam"}}, "actions.reject_text: must be one line"),
    ({"outbound": {"pause_text": "Paused\r\n250 OK"}},
     "outbound.pause_text: must be one line of printable ASCII (an SMTP reply)"),
    ({"actions": {"subject_tag": "[SPAM]\nBcc: x@example.org"}},
     "actions.subject_tag: must be one line without control characters"),
    ({"actions": {"quarantine": 20.0, "reject": 10.0}},
     "actions.reject: must be above quarantine (20), or quarantine never happens; set quarantine "
     "= false to never take that action (got 10.0); allowed: a number, or false to never take "
     "this action"),
    ({"actions": {"quarantine": True}}, "actions.quarantine: Input should be a valid number"),
    ({"actions": {"rewrite_subject": 12.0}},
     "actions.quarantine: must be above rewrite_subject (12), or rewrite_subject never happens"),
    ({"outbound": {"reject": 8.0}}, "outbound.reject: must be above quarantine (8)"),
    ({"policy": [{"match": ["*@example.org"]}]},
     "policy.0.match: '*@example.org': no wildcards; @example.org is every address of that domain"),
    ({"policy": [{"match": ["postmaster@"]}]},
     "policy.0.match: 'postmaster@' is not a mail address like jane@example.org"),
    ({"policy": [{"match": ["example"]}]}, "policy.0.match: 'example' is not a domain name"),
    ({"policy": [{"match": ["postmaster@@example.org"]}]},  # was taken, and matched no mail
     "policy.0.match: 'postmaster@@example.org' is not a mail address like jane@example.org"),
    ({"policy": [{"match": [], "bypass": True}]},
     "policy.0.match: List should have at least 1 item after validation, not 0 (got []); "
     "allowed: a non-empty list of user@example.org, @example.org (the domain) or example.org"),
    ({"web": {"users": [{"name": "jane", "password_hash": ARGON2, "addresses": ["jane@"]}]}},
     "web.users.0.addresses: 'jane@' is not a mail address like jane@example.org (got ['jane@']); "
     'allowed: full mail addresses, e.g. ["jane@example.org"]'),
    ({"web": {"trusted_proxies": ["proxy.example.org"]}},
     "web.trusted_proxies: 'proxy.example.org' is not an IP address or network (got "
     "['proxy.example.org']); allowed: IP addresses or networks of your proxies, e.g. "
     '["127.0.0.1", "::1", "10.0.0.0/24"]'),
    ({"web": {"trusted_proxies": ["*"]}}, "web.trusted_proxies: '*' is not an IP address"),
    ({"web": {"trusted_proxies": "127.0.0.1"}}, "web.trusted_proxies: Input should be a valid list"),
    # Each of these loaded, and its user could never log in, or saw an empty list, unexplained.
    ({"web": {"users": [{"name": "jane", "password_hash": ARGON2}]}},
     "web.users.0.addresses: a user (role user) sees only mail to their addresses: give at least "
     'one, or role = "admin" (got []); allowed: full mail addresses, e.g. ["jane@example.org"]'),
    ({"web": {"users": [{"name": "jane", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ",
                         "role": "admin"}]}},
     "web.users.0.password_hash: not a whole argon2 hash (cut short or changed in copying?): paste "
     "the line `mailsift web hash-password` prints"),
    ({"web": {"users": [{"name": "jane", "password_hash": "jane-pass-123", "role": "admin"}]}},
     "web.users.0.password_hash: must be an argon2 hash from `mailsift web hash-password`, never "
     "the password itself (the value is not shown, as it may be one); allowed: the whole line "
     "`mailsift web hash-password` prints, $argon2id$v=19$m=...,t=...,p=...$SALT$HASH"),
    ({"web": {"users": [{"name": " ", "password_hash": ARGON2, "role": "admin"}]}},
     "web.users.0.name: a login needs a name (got ' '); allowed: a login name, e.g. \"jane\""),
    ({"web": {"users": [{"name": "admin", "password_hash": ARGON2, "role": "admin"},
                        {"name": "admin", "password_hash": ARGON2, "addresses": ["a@example.org"]}]}},
     "web.users: 2 users are named 'admin'; only the first could log in; allowed: [[web.users]] "
     "tables, each with a name of its own"),
    ({"web": {"user_actions": ["release", "report"]}},
     "web.user_actions.1: not one of those allowed (got 'report'); allowed: a list, each one of "
     "'release', 'release-ham', 'delete', 'spam', 'ham', 'forget', 'spam-report', 'ham-revoke'"),
    ({"web": {"users": [{"name": "jane", "password_hash": ARGON2, "role": "administrator"}]}},
     "web.users.0.role: not one of those allowed (got 'administrator'); allowed: one of 'admin', "
     "'user'"),
])
def test_bad_values_name_file_key_and_what_is_allowed(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "/etc/mailsift/mailsift.toml")
    message = str(err.value)
    assert message.startswith("/etc/mailsift/mailsift.toml: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(("section", "table", "expected"), [
    ("dns", {"blocklists": {"zone": "S3CRETKEY.zen.dq.spamhaus.net", "rule": "RCVD_IN_ZEN_DQS",
                            "score": 3.0}},
     "m.toml: dns.blocklists: Input should be a valid list (got a table of zone, rule, score); "
     "allowed: a list of BlockLists"),
    ("web", {"users": {"name": "jane", "password_hash": ARGON2, "role": "admin"}},
     "m.toml: web.users: Input should be a valid list (got a table of name, password_hash, role); "
     "allowed: [[web.users]] tables, each with a name of its own"),
    ("web", {"users": [{"name": "jane", "password_hash": ARGON2, "role": "admin"}, "bob"]},
     "m.toml: web.users.1: Input should be a valid dictionary or instance of WebUser (got 'bob')"),
])
def test_a_table_written_where_a_list_goes_is_named_by_its_keys_alone(
        section: str, table: dict[str, object], expected: str) -> None:
    """`[dns.blocklists]` for `[[dns.blocklists]]` (or `[web.users]`) is refused, and the error
    repeated the table whole: a DNS list's access key in its zone (a27b861 keeps it out of every
    other error) or a user's password hash, into the terminal, the journal and tickets."""
    with pytest.raises(ConfigError) as err:
        parse_config({section: table}, "m.toml")
    assert str(err.value).startswith(expected)
    assert "S3CRETKEY" not in str(err.value) and ARGON2 not in str(err.value)


@pytest.mark.parametrize("pasted", ["Tr0ub4dor&3 horse", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA"])
def test_a_password_pasted_where_its_hash_goes_is_not_written_in_the_error(pasted: str) -> None:
    """The refusal echoed the value, "(got 'Tr0ub4dor&3 horse')": the password an admin put in
    password_hash by mistake went to the terminal, configtest's output and, from a service that
    would not start, the journal. A hash cut short is left out alike: it may be most of one."""
    users = [{"name": "admin", "password_hash": pasted, "role": "admin"}]
    with pytest.raises(ConfigError) as err:
        parse_config({"web": {"users": users}}, "m.toml")
    assert str(err.value).startswith("m.toml: web.users.0.password_hash: ")
    assert pasted not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can look as another user here")
def test_a_file_this_user_cannot_look_at_is_named_with_its_key(tmp_path: Path) -> None:
    """A Redis client key in a folder the milter's user may not search (Debian's
    /etc/ssl/private is root's and ssl-cert's) made the check raise PermissionError: every
    command said "mailsift: internal error: PermissionError", naming no key, and a reload met
    it outside the errors it refuses, so its thread ended and later reloads did nothing."""
    key = tmp_path / "private" / "redis.key"
    key.parent.mkdir(mode=0o700)
    key.write_text("")
    bayes = {"bayes": {"store": "rediss://10.0.0.5:6379/0", "tls_key_file": str(key)}}
    rules = {"rules": {"paths": [str(key.parent)]}}
    parse_config({**bayes, **rules}, "m.toml")  # root looks into every folder
    with listing_as_nobody(), pytest.raises(ConfigError) as err:
        parse_config(bayes, "m.toml")
    assert str(err.value) == (f"m.toml: bayes.tls_key_file: {key}: cannot look at it: Permission "
                              f"denied (got {str(key)!r}); allowed: empty, or the path of an existing file")
    with listing_as_nobody(), pytest.raises(ConfigError) as err:
        parse_config(rules, "m.toml")
    assert str(err.value).startswith(f"m.toml: rules.paths: {key.parent}: cannot look at it: "
                                     "Permission denied")


@pytest.mark.parametrize("store", ["sqlite:///var/lib/mailsift/bayes.sqlite", "redis://10.0.0.5:6379/2",
                                   "rediss://", "unix:///run/redis/redis.sock", "redis://[::1]/3/",
                                   "redis://:Pa55:word@10.0.0.5/0", "unix:///run/redis.sock?db=2",
                                   "redis://:pa%23ss%2F%3Fx%20y@10.0.0.5:6379/0", "redis://:p@ss@10.0.0.5/0",
                                   "unix:///run/x@y/redis.sock", "redis://:pass word@10.0.0.5:6379/0"])
def test_every_kind_of_bayes_store_is_accepted(store: str) -> None:
    assert parse_config({"bayes": {"store": store}}, "m.toml").bayes.store == store


@pytest.mark.parametrize("data", [
    {"outbound": {"tls_ca_file": "/etc/mailsift/no-ca.pem"}},  # counting in memory: no Redis
    {"bayes": {"store": "redis://10.0.0.5:6379/0", "tls_cert_file": "/etc/mailsift/no.crt"}},
    {"quarantine": {"index": "", "tls_key_file": "/etc/mailsift/no.key"}},
    {"bayes": {"store": "sqlite:///var/lib/mailsift/bayes.sqlite", "tls_key_file": "/no.key"}},
])
def test_a_tls_file_is_checked_only_where_tls_is_used(data: dict[str, object]) -> None:
    """redis-py is given the TLS files with a rediss:// URL only. A missing one named in a
    section without TLS, or without a Redis, loaded and served before the files were checked:
    refusing it stopped a working milter at the upgrade over a key it never reads."""
    parse_config(data, "m.toml")


def test_web_listen_on_every_address_is_written_with_the_port_alone() -> None:
    """uvicorn reads ':8025' as every address: the UI served so before web.listen was checked,
    and the check refused it, so `mailsift web` and the milter, which load the same file, no
    longer started after the upgrade. The port is still checked."""
    assert parse_config({"web": {"listen": ":8025"}}, "m.toml").web.listen == ":8025"
    with pytest.raises(ConfigError, match=r"web\.listen: must look like HOST:PORT"):
        parse_config({"web": {"listen": ":99999"}}, "m.toml")


def test_a_milter_listen_port_out_of_range_says_what_is_allowed() -> None:
    """README's upgrade step: configtest refuses a listen address with a port out of range,
    with one line naming the key; the line ended "allowed: a string", which the value was."""
    with pytest.raises(ConfigError) as refused:
        parse_config({"milter": {"listen": "inet:127.0.0.1:70000"}}, "m.toml")
    assert str(refused.value) == (
        "m.toml: milter.listen: must look like inet:HOST:PORT or unix:/PATH (got "
        "'inet:127.0.0.1:70000'); allowed: inet:HOST:PORT with a port from 1 to 65535, e.g. "
        "inet:127.0.0.1:11332, or unix:/PATH, e.g. unix:/var/spool/postfix/mailsift/milter.sock")


def test_a_password_with_a_space_in_a_redis_url_is_the_one_redis_is_given() -> None:
    """A URL's user part ends at # ? / and not at a space: redis-py reads 'redis://:pass
    word@10.0.0.5:6379/0' as the password "pass word" at 10.0.0.5:6379, and mailsift used it so,
    until ac6733f refused it with those signs, and a milter whose Redis password held a space
    no longer started after the upgrade."""
    for section in ("bayes", "quarantine"):
        key = "store" if section == "bayes" else "index"
        keys = getattr(parse_config({section: {key: "redis://:pass word@10.0.0.5:6379/0"}}, "m.toml"),
                       section)
        found = connector(settings_for(keys, getattr(keys, key), None))
        assert (found.where, found.password) == ("10.0.0.5:6379", "pass word")


@pytest.mark.parametrize("store", ["", "redis://10.0.0.5:6379/2", "rediss://", "unix:///run/redis/redis.sock"])
def test_the_outbound_pause_counts_in_memory_or_in_any_kind_of_redis(store: str) -> None:
    assert parse_config({"outbound": {"pause_store": store}}, "m.toml").outbound.pause_store == store


def load_error(path: Path, text: str) -> str:
    """The one line loading `text` from `path` stops with."""
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    return str(err.value)


@pytest.mark.parametrize(("store", "path"), [
    ("sqlite:///var/lib/mailsift/bayes.sqlite", "/var/lib/mailsift/bayes.sqlite"),
    ("sqlite:////var/lib/mailsift/bayes.sqlite", "/var/lib/mailsift/bayes.sqlite"),  # shown as //var
    ("redis://127.0.0.1:6379/0", None)])
def test_the_sqlite_file_of_a_store(store: str, path: str | None) -> None:
    assert parse_config({"bayes": {"store": store}}, "m.toml").bayes.sqlite_path == path


def test_a_bayes_store_that_is_a_plain_path_stops_loading_naming_file_key_and_schemes(
        tmp_path: Path) -> None:
    """It used to load, and fail at the first lookup as "bad Redis URL"."""
    path = tmp_path / "mailsift.toml"
    assert load_error(path, '[bayes]\nstore = "/var/lib/mailsift/bayes.sqlite"\n') == (
        f"{path}: bayes.store: must be sqlite:///PATH (one host) or a redis://, rediss:// or "
        "unix:// URL (got '/var/lib/mailsift/bayes.sqlite'); allowed: sqlite:///PATH, or "
        "redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS) or unix:///PATH")


def test_a_config_error_quoting_a_redis_url_masks_its_password(tmp_path: Path) -> None:
    """A Redis URL may carry the password (redis://:PASSWORD@host, which redis-py reads); a
    mistyped one was quoted whole, password and all, to the terminal and the journal."""
    path = tmp_path / "mailsift.toml"
    assert load_error(path, '[quarantine]\nindex = "redis:/:Secr3t-pw@10.0.0.7:6379/0"\n') == (
        f"{path}: quarantine.index: must be empty (local index) or a redis://, rediss:// or "
        "unix:// URL (got 'redis:/:***@10.0.0.7:6379/0'); allowed: empty, or redis://HOST:PORT/DB, "
        "rediss://HOST:PORT/DB (TLS) or unix:///PATH")
    assert load_error(path, '[bayes]\nstore = "redi://jane:Secr3t-pw@10.0.0.5:6379/0"\n') == (
        f"{path}: bayes.store: must be sqlite:///PATH (one host) or a redis://, rediss:// or "
        "unix:// URL (got 'redi://jane:***@10.0.0.5:6379/0'); allowed: sqlite:///PATH, or "
        "redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS) or unix:///PATH")


@pytest.mark.parametrize("password", ["pass word#", "pa/ss", "p@ss", "p?ss#x", "it's", 'a"b\'c',
                                      "tr\\ail\\", "x y@z w"])
def test_a_password_with_any_sign_is_masked_whole_in_a_config_error(tmp_path: Path,
                                                                    password: str) -> None:
    """The mask stopped where a URL parser stops, at a space, '#', '/' or a quote, and showed
    the rest: 'redis://:pass word#@10.0.0.5:99999/0' was quoted whole in the error."""
    path = tmp_path / "mailsift.toml"
    for user in ("", "jane"):
        url = f"redis://{user}:{password}@10.0.0.5:99999/0"
        error = load_error(path, f"[bayes]\nstore = {json.dumps(url)}\n")
        quote = repr(url)[0]  # repr quotes with " a URL holding ' (and no ")
        reason = ("a password in a Redis URL must give # ? / and any tab or line break "
                  "percent-encoded (# as %23, ? as %3F, / as %2F), or be kept in password_file"
                  if re.search(r"[#?/\t\r\n]", password) else
                  "the port of a Redis URL is a number from 1 to 65535, as in redis://10.0.0.5:6379/0")
        assert error == (f"{path}: bayes.store: {reason} (got "
                         f"{quote}redis://{user}:***@10.0.0.5:99999/0{quote}); allowed: "
                         "sqlite:///PATH, or redis://HOST:PORT/DB, rediss://HOST:PORT/DB (TLS) or "
                         "unix:///PATH")


def test_a_mistyped_pause_store_is_quoted_without_its_password(tmp_path: Path) -> None:
    path = tmp_path / "mailsift.toml"
    assert load_error(path, '[outbound]\npause_store = "redis:/:Secr3t-pw@10.0.0.7:6379/0"\n').startswith(
        f"{path}: outbound.pause_store: must be empty (count in this host's memory) or a redis://, "
        "rediss:// or unix:// URL (got 'redis:/:***@10.0.0.7:6379/0'); allowed: ")


def test_toml_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    """tomllib reads nested arrays by recursion: 5,000 of them ended every command, the milter's
    start and its reload thread with "internal error: RecursionError"."""
    path = tmp_path / "deep.toml"
    assert load_error(path, "a = " + "[" * 5000 + "]" * 5000 + "\n") == (
        f"{path}: not valid TOML for mailsift: arrays or inline tables nested too deep to read")


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[scan\nmax_bytes = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(str(path))


def test_an_example_table_uncommented_next_to_its_empty_list_says_which_line_to_delete(
        tmp_path: Path) -> None:
    path = tmp_path / "mailsift.toml"
    assert load_error(path, '[dns]\nblocklists = []\n[[dns.blocklists]]\nzone = "zen.example.net"\n') == (
        f"{path}: not valid TOML: Cannot mutate immutable namespace ('dns', 'blocklists') (at line "
        "3, column 17); 'dns.blocklists' is set with `blocklists = ...` and again as a table: keep "
        "one (to use [[dns.blocklists]] tables, delete the `blocklists = []` line)")


def test_a_config_that_is_not_utf8_names_the_file_and_the_byte_in_one_line(tmp_path: Path) -> None:
    """A Latin-1 byte in a comment used to end as "internal error: UnicodeDecodeError"."""
    path = tmp_path / "mailsift.toml"
    path.write_bytes("[scoring]\n# R\u00e9glages du site\nrequired_score = 6.0\n".encode("latin-1"))
    done = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(path), "postfix"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"mailsift: {path}: not UTF-8 text (byte 0xe9 at line 2, offset 13); "
                           "TOML files must be saved as UTF-8\n")


def test_false_means_never_take_that_action_globally_and_in_a_policy() -> None:
    """TOML has no null: the example said "leave one out to never take that action", but a key
    left out keeps its default, so mail still went to quarantine from 10 points on."""
    config = parse_config({"actions": {"quarantine": False},
                           "policy": [{"match": ["@strict.example"], "reject": False,
                                       "quarantine": 8.0}]}, "m.toml")
    normal, strict = (limits_for(f"bob@{d}.example", config, False) for d in ("plain", "strict"))
    assert [action_for(score, normal) for score in (5.0, 12.0, 99.0)] == [
        Action.PASS, Action.TAG, Action.REJECT]
    assert [action_for(score, strict) for score in (7.0, 8.0, 99.0)] == [
        Action.TAG, Action.QUARANTINE, Action.QUARANTINE]
