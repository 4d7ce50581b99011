"""`mailsift check` told the envelope the milter would have seen (--client-ip, --mail-from, ...).

An admin asking why the milter gave a message SPF_FAIL or RDNS_NONE ran `check --network` on
the file and got another verdict: a file has no envelope, and one without a Received header
got no SPF verdict at all. Told the envelope, check judges the message as the milter does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mailsift.cli import cli
from tests.network.conftest import DnsFixture
from tests.network.messages import letter
from tests.network.zone import (
    BLOCK_ZONE,
    GOOD_IP,
    LISTED_IP,
    NO_PTR_IP,
    UNCONFIRMED_IP,
)
from tests.support.corpus import corpus_sample
from tests.support.milter_process import to_toml

SPAM = corpus_sample("spam", 1, 10)[0]
SPF_RULES = {"SPF_PASS", "SPF_FAIL", "SPF_SOFTFAIL", "SPF_NEUTRAL", "SPF_NONE"}


def write_config(tmp_path: Path, test_dns: DnsFixture, **sections: Any) -> Path:
    """Our resolver and one block list; the network checks off unless --network says so."""
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml({
        "bayes": {"enabled": False},
        "dns": {"nameservers": [test_dns.server.address], "authserv_id": "mx.our.test",
                "blocklists": [{"zone": BLOCK_ZONE, "rule": "RCVD_IN_TEST_BL", "score": 2.5,
                                "codes": ["127.0.0.2"]}]},
        **sections}))
    return path


@pytest.fixture
def run(tmp_path: Path, test_dns: DnsFixture) -> Any:
    """`mailsift check ARGS letter.eml` in-process with the test config: (exit status, output)."""
    message = tmp_path / "letter.eml"
    message.write_bytes(letter())  # no Received header, no Return-Path
    config = write_config(tmp_path, test_dns)

    def check(*args: str, config_path: Path = config) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config_path), "check", *args, str(message)])

    return check


def verdict(done: Result) -> dict[str, Any]:
    assert done.exit_code in (0, 1), done.output
    found: dict[str, Any] = json.loads(done.output)
    return found


def rules(done: Result) -> set[str]:
    return {rule["name"] for rule in verdict(done)["rules"]}


def test_spf_of_a_file_without_received_headers_is_judged_by_the_told_client(run: Any) -> None:
    """Without the envelope the file had no client to judge: no SPF rule and no spf= (guard)."""
    unjudged = verdict(run("--network", "--json"))
    assert not SPF_RULES & {rule["name"] for rule in unjudged["rules"]}
    assert "spf=" not in unjudged["authentication_results"] and unjudged["envelope"] is None
    allowed = verdict(run("--network", "--json", "--client-ip", GOOD_IP,
                          "--mail-from", "tom@shop.test", "--helo", "mail.shop.test"))
    assert SPF_RULES & {rule["name"] for rule in allowed["rules"]} == {"SPF_PASS"}
    assert "spf=pass smtp.mailfrom=tom@shop.test" in allowed["authentication_results"]
    assert allowed["envelope"] == {
        "client_ip": GOOD_IP, "client_name": "mail.shop.test", "helo": "mail.shop.test",
        "mail_from": "tom@shop.test", "rcpt_to": [], "auth_user": "", "local": False,
        "judged_as": "inbound", "actions": None, "unnamed_action": "pass", "subject": None}
    forged = run("--network", "--json", "--client-ip", NO_PTR_IP, "--mail-from", "<tom@shop.test>")
    assert SPF_RULES & rules(forged) == {"SPF_FAIL"}


def test_the_told_client_is_the_one_reverse_dns_helo_and_lists_judge(run: Any) -> None:
    listed = rules(run("--network", "--json", "--client-ip", LISTED_IP, "--helo", "localhost",
                       "--mail-from", "tom@shop.test"))
    assert {"RCVD_IN_TEST_BL", "HELO_NOT_FQDN"} <= listed
    assert "RDNS_NONE" in rules(run("--network", "--json", "--client-ip", NO_PTR_IP,
                                    "--mail-from", "tom@shop.test"))


@pytest.mark.parametrize(("ip", "network", "name"), [
    (GOOD_IP, "--network", "mail.shop.test"),  # its PTR name resolves back to it
    (UNCONFIRMED_IP, "--network", "unknown"),  # fake.shop.test is another address
    (NO_PTR_IP, "--network", "unknown"),
    (GOOD_IP, "--no-network", "unknown"),  # no query leaves the host
])
def test_the_client_name_is_the_one_postfix_would_report(run: Any, ip: str, network: str,
                                                         name: str) -> None:
    told = verdict(run(network, "--json", "--client-ip", ip, "--mail-from", "tom@shop.test"))
    assert told["envelope"]["client_name"] == name
    given = verdict(run(network, "--json", "--client-ip", ip, "--client-name", "mx.other.test",
                        "--mail-from", "tom@shop.test"))
    assert given["envelope"]["client_name"] == "mx.other.test"


def test_each_rcpt_gets_its_own_policy_as_in_the_milter(tmp_path: Path, test_dns: DnsFixture,
                                                        run: Any) -> None:
    """Bob's policy quarantines from 0.1 points, rejects from 0.2; Anna has none. The letter
    from a client told scores DATE_PAST_30D, arriving now: Bob's copy is quarantined, not
    rejected, as Anna's is delivered; alone, Bob's is rejected. Without a client the letter has
    no arrival to date it by, and passes."""
    config = write_config(tmp_path, test_dns, policy=[
        {"match": ["bob@our.test"], "quarantine": 0.1, "reject": 0.2}])
    both = run("--json", "--client-ip", GOOD_IP, "--mail-from", "tom@shop.test", "--rcpt",
               "anna@our.test", "--rcpt", "<bob@our.test>", config_path=config)
    assert verdict(both)["envelope"]["actions"] == {"anna@our.test": "pass",
                                                    "bob@our.test": "quarantine"}
    alone = run("--client-ip", GOOD_IP, "--mail-from", "tom@shop.test", "--rcpt",
                "bob@our.test", config_path=config)
    assert alone.output.endswith(f"\nEnvelope: client=unknown[{GOOD_IP}] helo= from=<tom@shop.test> "
                                 "to=<bob@our.test>; judged as inbound mail\n"
                                 "Action: reject for <bob@our.test>\n"), alone.output
    unarrived = run("--rcpt", "bob@our.test", config_path=config)
    assert unarrived.output.endswith("\nEnvelope: client=none (the Received headers judged) "
                                     "to=<bob@our.test>; judged as inbound mail\n"
                                     "Action: pass for <bob@our.test>\n"), unarrived.output


@pytest.mark.parametrize("address", ["mail.shop.test", "192.0.2.300", "[192.0.2.10]", ""])
def test_a_client_ip_that_is_no_address_is_refused_in_one_line(run: Any, address: str) -> None:
    done = run("--client-ip", address, "--mail-from", "tom@shop.test")
    assert (done.exit_code, done.output) == (
        2, f"mailsift: check: --client-ip {address!r}: not an IPv4 or IPv6 address (the client's "
        "address as Postfix logs it, e.g. 192.0.2.7 or 2001:db8::7)\n")


def test_connection_options_without_the_client_are_refused(run: Any) -> None:
    done = run("--helo", "mail.shop.test", "--mail-from", "tom@shop.test")
    assert (done.exit_code, done.output) == (
        2, "mailsift: check: --helo, --mail-from describe the client's connection: give its "
        "address with --client-ip too\n")


def test_a_client_without_mail_from_takes_the_return_path_else_is_refused(
        tmp_path: Path, test_dns: DnsFixture, run: Any) -> None:
    """Taken as a bounce, the message would be judged as one (SPF by the HELO name)."""
    done = run("--client-ip", GOOD_IP)
    assert (done.exit_code, done.output) == (
        2, "mailsift: check: --client-ip needs --mail-from, the envelope sender (<> for a "
        "bounce): the message has no Return-Path to take it from\n")
    delivered = tmp_path / "delivered.eml"
    delivered.write_bytes(b"Return-Path: <tom@shop.test>\r\n" + letter())
    found = CliRunner().invoke(cli, ["--config", str(write_config(tmp_path, test_dns)), "check",
                                     "--json", "--client-ip", GOOD_IP, str(delivered)])
    assert verdict(found)["envelope"]["mail_from"] == "tom@shop.test"
    bounce = verdict(run("--json", "--client-ip", GOOD_IP, "--mail-from", "<>"))
    assert bounce["envelope"]["mail_from"] == ""


def test_authenticated_submission_is_judged_as_the_milter_judges_it(
        tmp_path: Path, test_dns: DnsFixture, run: Any) -> None:
    """milter.authenticated = "outbound" (the default): the [outbound] thresholds, and no SPF for
    the client (it logged in); "skip": the milter gives no verdict, so none is made up."""
    told = ("--network", "--json", "--client-ip", NO_PTR_IP, "--mail-from", "tom@shop.test",
            "--auth-user", "tom", "--rcpt", "anna@our.test")
    outbound = verdict(run(*told))
    assert outbound["envelope"]["judged_as"] == "outbound"
    assert not SPF_RULES & {rule["name"] for rule in outbound["rules"]}
    skipped = run(*told, config_path=write_config(tmp_path, test_dns,
                                                  milter={"authenticated": "skip"}))
    assert (skipped.exit_code, skipped.output) == (
        2, 'mailsift: check: the milter does not scan mail of SASL login tom '
        '(milter.authenticated = "skip"): it gives no verdict to compare with\n')


def test_a_trusted_client_is_judged_as_milter_trusted_says(tmp_path: Path, test_dns: DnsFixture,
                                                          run: Any) -> None:
    """Scanned (the default), the trusted client is no outsider to judge: no SPF for it."""
    trusted = {"network": {"trusted_networks": ["192.0.2.0/24"]}}
    told = ("--network", "--json", "--client-ip", NO_PTR_IP, "--mail-from", "tom@shop.test")
    scanned = verdict(run(*told, config_path=write_config(tmp_path, test_dns, **trusted)))
    assert scanned["envelope"]["judged_as"] == "inbound"
    assert not SPF_RULES & {rule["name"] for rule in scanned["rules"]}
    assert verdict(run(*told, config_path=write_config(
        tmp_path, test_dns, **trusted, milter={"trusted": "outbound"})))["envelope"][
        "judged_as"] == "outbound"
    skipped = run(*told, config_path=write_config(tmp_path, test_dns, **trusted,
                                                  milter={"trusted": "skip"}))
    assert (skipped.exit_code, skipped.output) == (
        2, f"mailsift: check: the milter does not scan mail from {NO_PTR_IP}, a client in "
        'network.trusted_networks (milter.trusted = "skip"): it gives no verdict to compare with\n')


def test_a_subaddress_is_scored_with_its_owners_bayes_store_as_in_the_milter(
        tmp_path: Path, test_dns: DnsFixture, run: Any) -> None:
    """The milter's workers read jane+shop@'s mail with Jane's store (milter.recipient_delimiter);
    check's Bayes was made without the delimiter, and took a store of jane+shop@ of its own."""
    config = write_config(tmp_path, test_dns, milter={"recipient_delimiter": "+"},
                          bayes={"store": f"sqlite:///{tmp_path / 'bayes.sqlite'}", "min_spam": 1,
                                 "min_ham": 1, "per_recipient": "address"})
    for kind, raw in (("spam", SPAM), ("ham", letter())):
        (tmp_path / f"{kind}.eml").write_bytes(raw)
        learned = CliRunner().invoke(cli, ["--config", str(config), "learn", f"--{kind}", "--for",
                                           "jane@our.test", str(tmp_path / f"{kind}.eml")])
        assert learned.exit_code == 0, learned.output
    janes = verdict(run("--json", "--rcpt", "jane+shop@our.test", config_path=config))
    [bayes] = [rule["evidence"] for rule in janes["rules"] if rule["name"].startswith("BAYES_")]
    assert bayes.split("; ")[1] == "jane@our.test's store", bayes
    unlearned = verdict(run("--json", config_path=config))  # the site's store learned nothing
    assert not [rule for rule in unlearned["rules"] if rule["name"].startswith("BAYES_")]


def test_mail_of_the_sendmail_command_is_judged_as_milter_local_says(
        tmp_path: Path, test_dns: DnsFixture, run: Any) -> None:
    """A cron job's or a web form's mail reaches the milter through non_smtpd_milters, from the
    connection Postfix makes up for it, and is treated as milter.local says; check could not be
    told so. By default it is outbound mail, and a reject becomes a quarantine, as the milter
    turns it (Postfix would bounce it to the script's sender): here a SASL client's copy is
    rejected where the same message from the sendmail command is held."""
    low = write_config(tmp_path, test_dns, outbound={"quarantine": 0.1, "reject": 0.2})
    local = verdict(run("--json", "--local", "--mail-from", "www-data@our.test", "--rcpt",
                        "anna@our.test", config_path=low))
    assert local["envelope"] == {
        "client_ip": "127.0.0.1", "client_name": "localhost", "helo": "localhost",
        "mail_from": "www-data@our.test", "rcpt_to": ["anna@our.test"], "auth_user": "",
        "local": True, "judged_as": "outbound", "actions": {"anna@our.test": "quarantine"},
        "unnamed_action": None, "subject": None}
    submitted = verdict(run("--json", "--client-ip", GOOD_IP, "--auth-user", "tom", "--mail-from",
                            "www-data@our.test", "--rcpt", "anna@our.test", config_path=low))
    assert submitted["envelope"]["actions"] == {"anna@our.test": "reject"}
    line = run("--local", "--mail-from", "www-data@our.test", config_path=low)
    assert line.output.endswith("\nEnvelope: client=localhost[127.0.0.1] via=sendmail "
                                "from=<www-data@our.test>; judged as outbound mail\nAction: "
                                "quarantine for a recipient no [[policy]] names (no --rcpt "
                                "given)\n"), line.output  # a reject held, as with --rcpt
    scanned = write_config(tmp_path, test_dns, milter={"local": "scan"})
    assert verdict(run("--json", "--local", "--mail-from", "www-data@our.test",
                       config_path=scanned))["envelope"]["judged_as"] == "inbound"
    skipped = run("--local", "--mail-from", "www-data@our.test",
                  config_path=write_config(tmp_path, test_dns, milter={"local": "skip"}))
    assert (skipped.exit_code, skipped.output) == (
        2, "mailsift: check: the milter does not scan mail handed to Postfix's sendmail command "
        '(milter.local = "skip"): it gives no verdict to compare with\n')


@pytest.mark.parametrize(("told", "named"), [
    (("--client-ip", GOOD_IP, "--mail-from", "tom@shop.test"), "--client-ip"),
    (("--helo", "mail.shop.test", "--auth-user", "tom"), "--helo, --auth-user"),
])
def test_the_sendmail_command_with_a_client_is_refused_in_one_line(
        run: Any, told: tuple[str, ...], named: str) -> None:
    done = run("--local", *told)
    assert (done.exit_code, done.output) == (
        2, "mailsift: check: --local (mail of Postfix's sendmail command) has no client "
        f"connection: leave out {named}\n")


def test_check_shows_the_headers_the_milter_adds_and_says_when_it_adds_none(
        tmp_path: Path, test_dns: DnsFixture, run: Any) -> None:
    """Outbound mail gets no X-Spam headers (outbound.add_headers = false, the default), yet
    check printed them, as if the recipients saw that verdict; with actions.report_header on,
    the milter adds X-Spam-Report, which check left out. Rejected, no copy gets any."""
    submitted = ("--client-ip", GOOD_IP, "--auth-user", "tom", "--mail-from", "tom@shop.test")
    kept_back = run(*submitted)
    assert kept_back.output.startswith(
        "No headers: the milter adds none to outbound mail (outbound.add_headers = false); "
        "score="), kept_back.output
    assert "X-Spam-" not in kept_back.output
    as_json = verdict(run("--json", *submitted))
    assert (as_json["headers"], as_json["no_headers"]) == (
        [], "the milter adds none to outbound mail (outbound.add_headers = false)")
    added = verdict(run("--json", *submitted, config_path=write_config(
        tmp_path, test_dns, outbound={"add_headers": True})))
    assert [h["name"] for h in added["headers"]] == [
        "X-Spam-Flag", "X-Spam-Score", "X-Spam-Level", "X-Spam-Status"]
    reported = run(config_path=write_config(tmp_path, test_dns, actions={"report_header": True}))
    assert [line.partition(":")[0] for line in reported.output.split("\n\n")[0].splitlines()
            if not line.startswith("\t")] == [
        "X-Spam-Flag", "X-Spam-Score", "X-Spam-Level", "X-Spam-Status", "X-Spam-Report"]
    rejecting = write_config(tmp_path, test_dns, policy=[
        {"match": ["bob@our.test"], "quarantine": 0.1, "reject": 0.2}])
    rejected = run("--client-ip", GOOD_IP, "--mail-from", "tom@shop.test", "--rcpt",
                   "bob@our.test", config_path=rejecting)
    assert rejected.output.startswith("No headers: the milter rejects the message; score="), \
        rejected.output


def test_a_hop_after_the_told_client_in_a_delivered_file_is_not_judged_as_its_relay(
        tmp_path: Path, test_dns: DnsFixture) -> None:
    """A delivered file carries, above our MX's Received header naming the told client, the
    headers of later hops: here the mailbox host's LMTP, at a listed address. The milter judged
    the message before they existed; check put them below the client, as the relays that had
    handed it the message, and looked the mailbox host up in the DNS lists. The same header
    below ours, a host before the client, is still looked up (guard)."""
    ours = (f"Received: from mail.shop.test (mail.shop.test [{GOOD_IP}]) by mx.our.test (Postfix) "
            "with ESMTP id 4AB12; Tue, 06 Aug 2024 10:55:01 +0100\r\n")
    hop = (f"Received: from relay.our.test (relay.our.test [{LISTED_IP}]) by mail.our.test with "
           "LMTP id 7QX; Tue, 06 Aug 2024 10:55:02 +0100\r\n")
    config = write_config(tmp_path, test_dns)

    def told(headers: str) -> set[str]:
        delivered = tmp_path / "delivered.eml"
        delivered.write_bytes(headers.encode() + letter())
        return rules(CliRunner().invoke(cli, [
            "--config", str(config), "check", "--network", "--json", "--client-ip", GOOD_IP,
            "--mail-from", "tom@shop.test", str(delivered)]))

    assert "RCVD_IN_TEST_BL" not in told(hop + ours)
    assert "RCVD_IN_TEST_BL" in told(ours + hop)
