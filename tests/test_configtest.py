"""`mailsift configtest`: every part the milter needs, checked before mail flows."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path
from shlex import quote

import pytest

from mailsift.classifier.redis_store import RedisStore
from mailsift.classifier.store import Label, LearnItem, token_key
from mailsift.config import parse_config
from mailsift.configtest import lists_check, rules_check, secrets_checks, web_check
from mailsift.host import host_name
from mailsift.ownership import user_name
from mailsift.rules.cf_parser import load_rule_files
from mailsift.secrets import (
    SERVICE_GROUP,
    SERVICE_USER,
    UNITS_ENVIRONMENT_FILE,
    Services,
    exposure,
    services,
)
from tests.support.cli import run_mailsift
from tests.support.milter_process import to_toml
from tests.support.redis_server import RedisServer


def configtest(config: Path) -> subprocess.CompletedProcess[str]:
    return run_mailsift(["--config", str(config), "configtest"])


def write(tmp_path: Path, settings: dict[str, object]) -> Path:
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml({"quarantine": {"dir": str(tmp_path / "quarantine")}, **settings}))
    return path


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {line.split()[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()}


def test_a_fresh_single_host_setup_is_all_ok_and_nothing_is_written(tmp_path: Path) -> None:
    config = write(tmp_path, {"bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite"}})
    result = configtest(config)
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert found["config"] == f"ok   {config}"
    assert found["rules"].startswith("ok   ") and " rules from " in found["rules"]
    assert found["bayes"] == f"ok   {tmp_path}/bayes.sqlite: nothing learned yet (made by the first learn)"
    assert found["quarantine"] == (
        f"ok   no quarantine at {tmp_path}/quarantine yet (quarantine.dir): the milter makes it at "
        "its start; if the milter runs with this config, check the path")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mailsift.toml"]


def test_a_store_that_answers_and_an_index_that_does_not(tmp_path: Path, redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.flushall()
    store = RedisStore.from_url(redis_server.url)
    store.learn(LearnItem("a" * 40, [token_key("hello")]), Label.SPAM, 1)
    store.close()
    down = RedisServer(tmp_path / "down")
    down.stop()
    secret = tmp_path / "redis-password"
    secret.write_text("Index-Pa55word\n")
    config = write(tmp_path, {"bayes": {"store": redis_server.url},
                              "quarantine": {"dir": str(tmp_path / "q"), "index": down.url,
                                             "password_file": str(secret)}})
    result = configtest(config)
    assert result.returncode == 1
    found = lines(result)
    assert found["bayes"] == (f"ok   127.0.0.1:{redis_server.port}: 1 spam, 0 ham learned; Bayes is "
                              "silent until 200 spam and 200 ham are learned")
    assert found["quarantine"].startswith("FAIL quarantine store unavailable: ")
    assert f"127.0.0.1:{down.port}" in found["quarantine"]
    assert "Pa55word" not in result.stdout + result.stderr


def test_the_outbound_pause_store_is_reached_and_a_dead_one_fails(tmp_path: Path,
                                                                  redis_server: RedisServer) -> None:
    """A dead pause store only showed as one warning in the mail log, once mail flowed: each
    host then pauses senders on its own count."""
    result = configtest(write(tmp_path, {"outbound": {"pause_store": redis_server.url}}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result)["pause"] == f"ok   counts shared in redis at 127.0.0.1:{redis_server.port}"
    down = RedisServer(tmp_path / "down")
    down.stop()
    url = f"redis://:Pause-Pa55word@127.0.0.1:{down.port}/0"
    result = configtest(write(tmp_path, {"outbound": {"pause_store": url}}))
    assert result.returncode == 1
    assert lines(result)["pause"] == (
        f"FAIL redis at 127.0.0.1:{down.port}: ConnectionError: Error 111 connecting to "
        f"127.0.0.1:{down.port}. Connection refused.; each milter host would count on its own")
    assert "Pa55word" not in result.stdout + result.stderr


def test_rule_lines_that_fail_the_lint_fail_the_rules_check_by_file_and_line(tmp_path: Path) -> None:
    """A typo in local.cf fails configtest as it fails `mailsift rules lint` (and SpamAssassin's
    --lint): the rule would otherwise silently never hit."""
    local = tmp_path / "local.cf"
    local.write_text("body MY_RULE /unclosed(/\nscore X abc\n")
    config = write(tmp_path, {"rules": {"local_cf": str(local)},
                              "bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite"}})
    lint = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config), "rules", "lint"],
                          capture_output=True, text=True, timeout=120)
    result = configtest(config)
    assert (lint.returncode, result.returncode) == (1, 1), result.stdout + result.stderr
    rules = lines(result)["rules"]
    assert rules.startswith("FAIL ") and "; 2 skipped: " in rules
    assert f"{local}:1 MY_RULE: bad regex: " in rules
    assert f"{local}:2 X: score is not a number: abc" in rules
    assert lines(result)["bayes"].startswith("ok ")


def test_rules_calling_eval_checks_mailsift_lacks_are_counted_not_failed(tmp_path: Path) -> None:
    """SpamAssassin's own rule set calls hundreds of plugin checks mailsift does not have (364
    in Debian's 4.0.1): a site loading it must still pass, and be told how many."""
    local = tmp_path / "local.cf"
    local.write_text("header SA_PLUGIN_RULE eval:check_some_sa_plugin()\nscore SA_PLUGIN_RULE 1.0\n")
    config = write(tmp_path, {"rules": {"local_cf": str(local)},
                              "bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite"}})
    result = configtest(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result)["rules"].endswith(
        "; 1 call eval checks mailsift lacks (`mailsift rules lint` names them)")


def test_spamassassin_settings_that_change_verdicts_are_named_with_what_to_set(tmp_path: Path) -> None:
    """A migrated local.cf raising required_score, welcome-listing a partner or rescoring a rule
    mailsift does not have loaded "ok" and lost its effect in silence: only `rules lint` noted it.
    configtest names each, by file:line, with the mailsift way; the check still passes (a site
    loading SpamAssassin's files must), and a required_score equal to ours is no news."""
    local = tmp_path / "local.cf"
    local.write_text("required_score 6.0\nrewrite_header Subject *****SPAM*****\n"
                     "whitelist_from *-news@partner.example\ntrusted_networks 10.0.0.0/8\n"
                     "score MISSING_DATE 2.0\nscore NO_SUCH_RULE 3.0\nrequired_score 5\n"
                     "bayes_auto_learn 1\n")
    config = write(tmp_path, {"rules": {"local_cf": str(local)},
                              "bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite"}})
    result = configtest(config)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = lines(result)["rules"]
    assert rules.startswith("ok   ")
    assert "; 5 SpamAssassin setting(s) not applied: " in rules
    assert f"{local}:1 required_score 6.0: not read from rule files: set scoring.required_score" in rules
    assert f"{local}:2 rewrite_header Subject *****SPAM*****: set actions.subject_tag" in rules
    assert (f"{local}:3 whitelist_from *-news@partner.example: a partial wildcard is not taken: "
            "site lists hold an address or a domain with its subdomains; write each address, or "
            "*@partner.example for all of partner.example") in rules
    assert (f"{local}:4 trusted_networks 10.0.0.0/8: not read from rule files: set "
            "network.trusted_networks") in rules
    assert f"{local}:6 score: NO_SUCH_RULE: rule is not defined" in rules
    assert "MISSING_DATE" not in rules and ":7 " not in rules and "bayes_auto_learn" not in rules


def test_site_list_entries_are_counted_by_the_file_that_gave_them(tmp_path: Path) -> None:
    """A migrated local.cf's whitelist_from and blacklist_from lines were named as unsupported
    and lost; now they are site list entries, and configtest says how many each file gave."""
    local = tmp_path / "local.cf"
    local.write_text("whitelist_from *@partner.example boss@bank.example\n"
                     "welcomelist_auth *@*.supplier.example\nblacklist_from *@spam.example\n")
    config = write(tmp_path, {"rules": {"local_cf": str(local)},
                              "lists": {"welcome": ["bank.example"], "block": ["junk.example"]}})
    result = configtest(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines(result)["lists"] == (f"ok   4 welcome, 2 block entries ({config} [lists]: 1 "
                                      f"welcome, 1 block; {local}: 3 welcome, 1 block); no "
                                      "welcome counts while dns.enabled is false: nothing can "
                                      "prove a sender")
    assert "not applied" not in lines(result)["rules"]


def test_site_list_counts_add_up_to_the_total_when_local_cf_repeats_the_toml(tmp_path: Path) -> None:
    """An entry both [lists] and local.cf gave (or [lists] gave twice) was counted for each:
    "3 welcome ... ([lists]: 3 welcome ...; local.cf: 2 welcome ...)". It counts for [lists]
    now, and local.cf's repeats are named beside its count."""
    local = tmp_path / "local.cf"
    local.write_text("whitelist_from *@bank.example *@partner.example\n"
                     "blacklist_from *@junk.example\n")
    config = parse_config({"rules": {"local_cf": str(local)},
                           "lists": {"welcome": ["bank.example", "BANK.example", "shop.example"],
                                     "block": ["junk.example"]}}, "mailsift.toml")
    assert lists_check(config, load_rule_files([local], {})).detail == (
        f"3 welcome, 1 block entries (mailsift.toml [lists]: 2 welcome, 1 block; {local}: 1 "
        "welcome, 0 block (2 more already in [lists])); no welcome counts while dns.enabled is "
        "false: nothing can prove a sender")


def test_a_bad_site_list_entry_is_one_line_naming_file_key_and_form(tmp_path: Path) -> None:
    config = write(tmp_path, {"lists": {"welcome": ["partner.example", "*@bank.example"]}})
    result = configtest(config)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == (
        f"mailsift: {config}: lists.welcome: '*@bank.example': no wildcards; bank.example is "
        "every address of that domain and its subdomains (got ['partner.example', "
        "'*@bank.example']); allowed: addresses or domains (a domain covers its subdomains), "
        'e.g. ["billing@bank.example", "partner.example"]\n')


def test_a_redis_wanting_a_password_none_was_given_says_so_and_where_it_comes_from(
        tmp_path: Path) -> None:
    """Redis answers a client without a password "HELLO must be called with the client already
    authenticated, otherwise the HELLO AUTH <user> <pass> option can be used ...". The usual
    cause is README's `sudo -u mailsift mailsift configtest`, run without the units' root-only
    secrets.env, and that line named no password at all."""
    server = RedisServer(tmp_path / "redis", password="Shared-Pa55word")
    try:
        config = write(tmp_path, {"bayes": {"store": server.url},
                                  "quarantine": {"dir": str(tmp_path / "q"), "index": server.url},
                                  "outbound": {"pause_store": server.url}})
        refused = configtest(config)
        env = {**os.environ, "MAILSIFT_REDIS_PASSWORD": "Shared-Pa55word"}
        given = subprocess.run([sys.executable, "-m", "mailsift", "--config", str(config),
                                "configtest"], capture_output=True, text=True, timeout=120, env=env)
    finally:
        server.stop()
    assert refused.returncode == 1
    for check in ("bayes", "quarantine", "pause"):
        assert lines(refused)[check].startswith("FAIL "), refused.stdout
        assert (f"redis at 127.0.0.1:{server.port}: AuthenticationError: the server wants a "
                "password and none was given") in lines(refused)[check]
        assert "/etc/mailsift/secrets.env" in lines(refused)[check]
    assert given.returncode == 0, given.stdout + given.stderr


def test_the_trusted_relays_are_shown_and_an_inferred_trust_says_how_to_decide(tmp_path: Path) -> None:
    """With no network listed, private relays are trusted by inference: the administrator must see
    that, and which setting replaces it."""
    inferred = lines(configtest(write(tmp_path, {})))
    listed = lines(configtest(write(tmp_path, {"network": {"trusted_networks": ["10.0.0.5"]}})))
    assert inferred["trust"] == ("ok   loopback + private ranges (inferred; set "
                                 "network.trusted_networks to decide)")
    assert listed["trust"] == ("ok   loopback + 10.0.0.5/32 (network.trusted_networks); their mail is "
                               "scanned as inbound (milter.trusted = scan)")
    outbound = lines(configtest(write(tmp_path, {"network": {"trusted_networks": ["10.0.0.5"]},
                                                 "milter": {"trusted": "outbound"}})))
    assert outbound["trust"].endswith("; their mail is judged as outbound (milter.trusted = outbound)")


def test_configtest_names_an_un_line_that_leaves_its_entry_welcomed(tmp_path: Path) -> None:
    """`unwhitelist_from x` after `whitelist_auth x` took the welcome back before un- lines went
    by family (as in SpamAssassin); after the upgrade the sender was welcomed again and the rules
    line said nothing of it."""
    local = tmp_path / "local.cf"
    local.write_text("whitelist_auth billing@bank.example\nunwhitelist_from billing@bank.example\n")
    config = parse_config({"rules": {"local_cf": str(local)}}, "mailsift.toml")
    detail = rules_check(config, load_rule_files([local], {})).detail
    assert (f"{local}:2 unwhitelist_from billing@bank.example: takes back only what "
            "whitelist_from/welcomelist_from lines with this glob added") in detail
    assert f"billing@bank.example stays on the welcome list, held by {local}:1" in detail


def test_a_password_file_that_cannot_be_read_is_named_with_its_key(tmp_path: Path) -> None:
    """The bayes and quarantine lines said "/etc/mailsift/redis.pw: cannot read the Redis password:
    No such file or directory", not which of the three sections that take a password_file named
    it; the pause line named outbound.password_file already."""
    missing = tmp_path / "no-such-password"
    redis = {"password_file": str(missing)}
    config = write(tmp_path, {
        "bayes": {"store": "redis://127.0.0.1:6379/0", **redis},
        "quarantine": {"dir": str(tmp_path / "q"), "index": "redis://127.0.0.1:6379/1", **redis},
        "outbound": {"pause_store": "redis://127.0.0.1:6379/2", **redis}})
    result = configtest(config)
    assert result.returncode == 1
    found = lines(result)
    why = f"{missing}: cannot read the Redis password: No such file or directory"
    assert (found["bayes"], found["quarantine"], found["pause"]) == (
        f"FAIL bayes.password_file: {why}", f"FAIL quarantine.password_file: {why}",
        f"FAIL outbound.password_file: {why}")


def test_logins_without_an_admin_fail_the_web_check(tmp_path: Path) -> None:
    """configtest said ok to [[web.users]] without an admin, which `mailsift web` refuses: an
    upgrade that restarts once configtest passes (README) left the review UI stopped."""
    hash_ = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    jane = {"name": "jane", "password_hash": hash_, "addresses": ["jane@example.org"]}
    check = web_check(parse_config({"web": {"users": [jane]}}, "m.toml"))
    assert (check.ok, check.detail) == (False, 'm.toml: web.users: no admin in [[web.users]] (there is '
                                        'no default password); allowed: at least one with role = '
                                        '"admin" and a password_hash from `mailsift web hash-password`')
    admin = {"name": "admin", "password_hash": hash_, "role": "admin"}
    web = {"users": [jane, admin], "base_url": "https://mail.example.org/quarantine/"}
    check = web_check(parse_config({"web": web, "dns": {"enabled": True}}, "m.toml"))
    assert (check.ok, check.detail) == (True, "2 login(s), 1 admin(s); review UI on 127.0.0.1:8025")
    check = web_check(parse_config({"web": web, "dns": {"enabled": False}}, "m.toml"))
    assert (check.ok, check.detail) == (True, "2 login(s), 1 admin(s); review UI on 127.0.0.1:8025; "
                                        "users' welcome entries count for nothing while dns.enabled "
                                        "is false: nothing can prove a sender")
    check = web_check(parse_config({}, "m.toml"))
    assert (check.ok, check.detail) == (True, "no [[web.users]]: `mailsift web` does not start "
                                        "(needed only for the review UI)")


def test_a_session_secret_mailsift_web_refuses_fails_the_web_check(tmp_path: Path) -> None:
    """configtest said ok to a web.secret_file too short or not there, which `mailsift web`
    refuses: the review UI stayed stopped after an upgrade restarted once configtest passed."""
    hash_ = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    admin = {"name": "admin", "password_hash": hash_, "role": "admin"}
    secret = tmp_path / "web.secret"

    def check(**web: str) -> tuple[bool, str]:
        found = web_check(parse_config({"web": {"users": [admin], **web}, "dns": {"enabled": True}},
                                       "m.toml"))
        return found.ok, found.detail

    assert check(secret_file=str(secret)) == (
        False, f"m.toml: web.secret_file: {secret}: cannot read the session secret: No such file "
               "or directory")
    secret.write_text("short\n")
    assert check(secret_file=str(secret)) == (
        False, f"m.toml: web.secret_file: {secret}: the session secret is 5 characters; allowed: "
               "at least 16, e.g. made by `head -c 32 /dev/urandom | base64`")
    secret.write_text("s" * 32 + "\n")
    assert check(secret_file=str(secret)) == (True, "1 login(s), 1 admin(s); review UI on 127.0.0.1:8025")


def test_the_web_check_says_where_the_digests_links_lead_when_no_user_could_open_them() -> None:
    """With web.base_url empty the digests link to web.listen, by default 127.0.0.1:8025, which
    no user's browser reaches, and configtest said nothing; a listen on every address lends the
    links this host's name, which the admin sees."""
    hash_ = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    jane = {"name": "jane", "password_hash": hash_, "addresses": ["jane@example.org"]}
    admin = {"name": "admin", "password_hash": hash_, "role": "admin"}

    def detail(users: list[dict[str, object]], **web: str) -> str:
        config = parse_config({"web": {"users": users, **web}, "dns": {"enabled": True}}, "m.toml")
        return web_check(config).detail.removeprefix(f"{len(users)} login(s), 1 admin(s); review UI on ")

    fix = ("which only a browser on this host opens: set web.base_url to the UI's address as its "
           "users reach it")
    assert detail([jane, admin]) == (
        f"127.0.0.1:8025; the digests' links lead to http://127.0.0.1:8025/, {fix}")
    assert detail([jane, admin], listen="[::1]:8025") == (
        f"[::1]:8025; the digests' links lead to http://[::1]:8025/, {fix}")
    assert detail([jane, admin], base_url="http://LocalHost.:8025/") == (
        f"127.0.0.1:8025; the digests' links lead to http://LocalHost.:8025/, {fix}")
    assert detail([jane, admin], listen=":8025") == (
        f":8025; the digests' links lead to http://{host_name()}:8025/ (this host's name; "
        "web.base_url sets another)")
    assert detail([jane, admin], listen="192.0.2.1:8025") == "192.0.2.1:8025"
    assert detail([jane, admin], base_url="https://mail.example.org/") == "127.0.0.1:8025"
    assert detail([admin]) == "127.0.0.1:8025"  # no user with addresses: no digest is sent


# The units' EnvironmentFile where a test has none: a host's own /etc/mailsift/secrets.env
# would otherwise add its line to the tests' (tests of it give their own).
NO_ENVIRONMENT_FILE = "/nonexistent/mailsift/secrets.env"
# Whose the files the tests make are: the user running them, and their group.
OWNER = f"{user_name(os.geteuid())}:{grp.getgrgid(os.getegid()).gr_name}"


def secret(path: Path, mode: int, text: str = "Secret-Pa55word-0123456789\n") -> Path:
    """A file holding a secret, with `mode` whatever the umask."""
    path.write_text(text)
    path.chmod(mode)
    return path


def test_secret_files_other_users_may_read_or_change_are_named_and_configtest_still_passes(
        tmp_path: Path) -> None:
    """A Redis password written with `echo pw > /etc/mailsift/redis.pass` under umask 022 is
    mode 0644, readable by every local user, and nothing said so. Each such file gets a line
    naming every key that names it, its mode and the command that closes it: a warning, as an
    existing install must keep running after an upgrade that restarts once configtest passes."""
    redis_pass = secret(tmp_path / "redis.pass", 0o644)
    web_secret = secret(tmp_path / "web secret", 0o660)
    config = write(tmp_path, {"bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite",
                                        "password_file": str(redis_pass)},
                              "quarantine": {"dir": str(tmp_path / "q"), "password_file": str(redis_pass)},
                              "web": {"secret_file": str(web_secret)}})
    result = configtest(config)
    assert result.returncode == 0, result.stdout + result.stderr
    warned = [line.partition("; fix: ") for line in result.stdout.splitlines()
              if line.startswith("secrets ")]
    assert [(line, fix.endswith(f"chmod 0640 {quote(str(file))}")) for (line, _, fix), file
            in zip(warned, (redis_pass, web_secret), strict=True)] == [
        (f"secrets    ok   bayes.password_file, quarantine.password_file: {redis_pass} is mode "
         f"0644 ({OWNER}): other local users can read it", True),
        (f"secrets    ok   web.secret_file: {web_secret} is mode 0660 ({OWNER}): group "
         f"{OWNER.partition(':')[2]} can change it", True)]
    assert "Pa55word" not in result.stdout + result.stderr


def test_secret_files_closed_to_other_users_give_one_ok_line(tmp_path: Path) -> None:
    """0640, 0600 and 0400 are what README installs or stricter: no warning, one line counting
    the files; a DNS list's access key file and a TLS key are secrets as a password file is."""
    key = secret(tmp_path / "dqs.key", 0o640, "DqsKey123\n")
    tls_key = secret(tmp_path / "client.key", 0o600)
    password = secret(tmp_path / "redis.pass", 0o400)
    data = {"bayes": {"password_file": str(password), "tls_key_file": str(tls_key)},
            "outbound": {"password_file": str(password)},
            "dns": {"blocklists": [{"zone": "zen.dq.spamhaus.net", "access_key_file": str(key),
                                    "rule": "RCVD_IN_ZEN_DQS", "score": 3.0}]}}
    closed = secrets_checks(parse_config(data, "m.toml"), NO_ENVIRONMENT_FILE)
    assert [check.line() for check in closed] == [
        "secrets    ok   3 file(s) holding secrets, none readable or writable by other users, nor "
        "writable by their group"]
    key.chmod(0o606)
    tls_key.chmod(0o602)
    opened = [check.detail.partition(" is mode ")[::2] for check in
              secrets_checks(parse_config(data, "m.toml"), NO_ENVIRONMENT_FILE)]
    assert [(keys, why.partition("; fix: ")[0]) for keys, why in opened] == [
        (f"bayes.tls_key_file: {tls_key}", f"0602 ({OWNER}): other local users can change it"),
        (f"dns.blocklists.0.access_key_file: {key}",
         f"0606 ({OWNER}): other local users can read and change it")]
    assert [check.line() for check in secrets_checks(parse_config({}, "m.toml"), NO_ENVIRONMENT_FILE)] == [
        "secrets    ok   no secret files named (password_file, tls_key_file, web.secret_file, "
        "access_key_file)"]


def test_the_config_file_counts_as_a_secret_file_only_when_it_holds_a_secret(tmp_path: Path) -> None:
    """[[web.users]] password hashes let whoever reads them guess the passwords offline, past
    the UI's login throttling; a Redis password in a URL and an access key written in a list's
    zone are secrets too. A config holding none may stay readable by all (0644, as packages
    install configs): warning about it would be noise."""
    path = tmp_path / "mailsift.toml"
    path.write_text("# the mode is what counts here\n")
    path.chmod(0o644)
    hash_ = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    admin = {"name": "admin", "password_hash": hash_, "role": "admin"}

    def warned(data: dict[str, object]) -> list[str]:
        return [check.detail.partition(" is mode ")[0]
                for check in secrets_checks(parse_config(data, str(path)), NO_ENVIRONMENT_FILE)]

    assert warned({"bayes": {"store": "redis://127.0.0.1:6379/0"}}) == [
        "no secret files named (password_file, tls_key_file, web.secret_file, access_key_file)"]
    assert warned({"web": {"users": [admin]}}) == [
        f"the config file, holding [[web.users]] password hashes: {path}"]
    dqs = {"zone": "KEY123.zen.dq.spamhaus.net", "rule": "RCVD_IN_ZEN_DQS_WL", "score": -3.0}
    assert warned({"bayes": {"store": "redis://:Pa55word@127.0.0.1:6379/0"},
                   "quarantine": {"index": "unix:///run/redis.sock?password=Pa55word"},
                   "dns": {"allowlists": [dqs]}}) == [
        f"the config file, holding the password in bayes.store and the password in "
        f"quarantine.index and the access key in dns.allowlists.0.zone: {path}"]
    path.chmod(0o640)
    assert warned({"web": {"users": [admin]}}) == [
        "1 file(s) holding secrets, none readable or writable by other users, nor writable by "
        "their group"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown is for root")
def test_the_fix_keeps_the_services_able_to_read_the_file(tmp_path: Path) -> None:
    """`chmod 0640` alone locks the services out of a root:root file they read as one of the
    "others" (the milter would lose its Redis password): then the command chowns it to root and
    the services' group first. A file of that group, or of that user, needs the chmod only."""
    user = pwd.getpwnam("daemon")  # stands for the mailsift user, in a group of its own
    reader = Services(user, grp.getgrgid(user.pw_gid))
    file = secret(tmp_path / "redis.pass", 0o644)
    assert exposure(str(file), reader) == (
        f"{file} is mode 0644 (root:root): other local users can read it; fix: chown root:daemon "
        f"{file} && chmod 0640 {file}")
    os.chown(file, 0, reader.group.gr_gid)
    assert exposure(str(file), reader) == (
        f"{file} is mode 0644 (root:daemon): other local users can read it; fix: chmod 0640 {file}")
    os.chown(file, user.pw_uid, 0)
    assert exposure(str(file), reader) == (
        f"{file} is mode 0644 (daemon:root): other local users can read it; fix: chmod 0640 {file}")
    file.chmod(0o640)
    assert exposure(str(file), reader) is None
    assert exposure(str(tmp_path / "missing"), reader) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="chown is for root")
def test_the_fix_names_only_a_group_that_exists_here(tmp_path: Path) -> None:
    """It said `chown root:mailsift FILE` on a host without that group (the quick start runs as
    whoever starts it), where the command fails and the file stays open. The group named is the
    units' Group= where it exists, else the services' user's own; a file stays in its group when
    no group would do (a user without a name), and root, reading any file, needs the chmod only."""
    user = pwd.getpwnam("daemon")
    file = secret(tmp_path / "redis.pass", 0o644)

    def fix(reader: Services) -> str:
        return (exposure(str(file), reader) or "").partition("; fix: ")[2]

    assert fix(Services(user, None)) == f"chown daemon {file} && chmod 0640 {file}"
    assert fix(Services(None, None)) == f"chmod 0640 {file}"
    root = pwd.getpwuid(0)
    os.chown(file, user.pw_uid, user.pw_gid)
    assert fix(Services(root, grp.getgrgid(0))) == f"chmod 0640 {file}"
    os.chown(file, 0, 0)
    assert fix(services()) == (f"chmod 0640 {file}" if services().user == root else
                               f"chown root:{SERVICE_GROUP} {file} && chmod 0640 {file}")


def test_the_fix_command_given_works_on_this_host(tmp_path: Path) -> None:
    """Run as printed, the fix closes the file: where the units' group does not exist (no
    package install), `chown root:mailsift` failed and left the Redis password readable by all."""
    file = secret(tmp_path / "redis.pass", 0o644)
    config = parse_config({"bayes": {"password_file": str(file)}}, "m.toml")
    (opened,) = secrets_checks(config, NO_ENVIRONMENT_FILE)
    done = subprocess.run(["sh", "-c", opened.detail.partition("; fix: ")[2]], capture_output=True,
                          text=True, timeout=10)
    assert (done.returncode, done.stderr, oct(file.stat().st_mode & 0o777)) == (0, "", "0o640")
    assert [check.detail for check in secrets_checks(config, NO_ENVIRONMENT_FILE)] == [
        "1 file(s) holding secrets, none readable or writable by other users, nor writable by "
        "their group"]


def test_the_units_secrets_env_is_checked_though_no_config_key_names_it(tmp_path: Path) -> None:
    """README has the Redis password written in /etc/mailsift/secrets.env, the units'
    EnvironmentFile, and only files the config names were checked: one left 0644 went unsaid.
    It is read by systemd as root before the service starts, so its fix is the chmod alone, to
    README's 0600: no service reads it, and 0640 (the services' files' mode) left it readable by
    its group, where README asks for root's alone."""
    env = secret(tmp_path / "secrets.env", 0o644, "MAILSIFT_REDIS_PASSWORD='Secret-Pa55word'\n")
    config = parse_config({}, "m.toml")
    assert [check.line() for check in secrets_checks(config, str(env))] == [
        f"secrets    ok   EnvironmentFile= of the systemd units (not a config key): {env} is mode "
        f"0644 ({OWNER}): other local users can read it; fix: chmod 0600 {env}"]
    env.chmod(0o600)
    assert [check.detail for check in secrets_checks(config, str(env))] == [
        "1 file(s) holding secrets, none readable or writable by other users, nor writable by "
        "their group"]


def test_a_rule_file_read_through_an_include_line_is_named_when_every_user_may_change_it(
        tmp_path: Path) -> None:
    """A site's shared file of welcome entries, pulled in by `include` from local.cf, could be
    left world-writable with nothing said: only the files the rules keys name were looked at."""
    (tmp_path / "shared").mkdir()
    shared = secret(tmp_path / "shared" / "welcome.cf", 0o666, "score MISSING_DATE 2.0\n")
    local = secret(tmp_path / "local.cf", 0o644, f"include {shared}\n")
    result = configtest(write(tmp_path, {"bayes": {"store": f"sqlite://{tmp_path}/bayes.sqlite"},
                                         "rules": {"local_cf": str(local)}}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("secrets")] == [
        f"secrets    ok   an include line: {shared} is mode 0666 ({OWNER}): other local users "
        f"can change it; fix: chmod o-w {shared}"]


def test_configtest_takes_the_services_user_group_and_environment_file_from_the_units() -> None:
    """No config key says who the services run as or where their environment file is: the
    units do, and what configtest assumes must be what they say."""
    units = sorted((Path(__file__).parents[1] / "systemd").glob("mailsift-*.service"))
    said = {unit.name: tuple(line for line in unit.read_text().splitlines()
                             if line.startswith(("User=", "Group=", "EnvironmentFile=")))
            for unit in units}
    assert len(units) >= 4 and said == dict.fromkeys(said, (
        f"User={SERVICE_USER}", f"Group={SERVICE_GROUP}", f"EnvironmentFile=-{UNITS_ENVIRONMENT_FILE}"))


def test_config_and_rule_files_every_user_may_change_are_named_with_the_fix(tmp_path: Path) -> None:
    """Anyone on the host who may write the config, a rule file or a folder of them changes
    scores or adds a welcome entry for their own spam, and configtest said nothing. Write is
    what counts for them (read is not: they hold no secret), and `chmod o-w` closes it."""
    rules = tmp_path / "rules.d"
    rules.mkdir()
    site = secret(rules / "site.cf", 0o666, "score MISSING_DATE 2.0\n")
    closed = secret(rules / "closed.cf", 0o644, "score MISSING_DATE 2.0\n")
    local = secret(tmp_path / "local.cf", 0o646, "score MISSING_DATE 2.0\n")
    path = secret(tmp_path / "mailsift.toml", 0o666, "# no secret here\n")
    rules.chmod(0o1777)
    config = parse_config({"rules": {"paths": [str(rules)], "local_cf": str(local)}}, str(path))
    assert [check.line() for check in secrets_checks(config, NO_ENVIRONMENT_FILE)] == [
        f"secrets    ok   {key}: {file} is mode {mode} ({OWNER}): other local users can {what}; "
        f"fix: chmod o-w {file}" for key, file, mode, what in (
            ("the config file", path, "0666", "change it"),
            ("rules.paths", rules, "1777", "add or replace files in it"),
            ("rules.paths", site, "0666", "change it"),
            ("rules.local_cf", local, "0646", "change it"))]
    assert oct(closed.stat().st_mode & 0o777) == "0o644"  # readable by all is no news
    for check in secrets_checks(config, NO_ENVIRONMENT_FILE):
        subprocess.run(["sh", "-c", check.detail.partition("; fix: ")[2]], check=True, timeout=10)
    assert [check.detail for check in secrets_checks(config, NO_ENVIRONMENT_FILE)] == [
        "no secret files named (password_file, tls_key_file, web.secret_file, access_key_file)"]
