"""The Authentication-Results header value the milter adds: SPF, every DKIM signature, DMARC."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mailsift.analysis.model import Envelope
from mailsift.cli import cli
from mailsift.config import parse_config
from mailsift.host import host_name, is_loopback_name
from mailsift.network import NetworkVerdicts, authentication_results
from mailsift.network.verdicts import DkimSignature, DmarcVerdict, SpfVerdict
from mailsift.scanner import Scanner
from tests.network.conftest import DnsFixture, network_config
from tests.network.messages import letter, scan, signed
from tests.network.zone import GOOD_IP, LISTED_IP
from tests.support.milter_process import to_toml


def test_listed_forger_gets_the_list_rule_and_failing_results(scanner: Scanner) -> None:
    result = scan(scanner, letter(), ip=LISTED_IP)
    assert "RCVD_IN_TEST_BL" in result.rule_names
    assert result.auth_results == ("mx.our.test; spf=fail smtp.mailfrom=tom@shop.test; dkim=none; "
                                   "dmarc=fail header.from=shop.test policy.dmarc=reject")


def test_signed_mail_from_an_allowed_host_passes_everything(scanner: Scanner, test_dns: DnsFixture) -> None:
    result = scan(scanner, signed(letter(), test_dns.dkim_private_key), ip=GOOD_IP)
    assert result.auth_results == (
        "mx.our.test; spf=pass smtp.mailfrom=tom@shop.test; dkim=pass header.d=shop.test "
        "header.s=sel; dmarc=pass header.from=shop.test policy.dmarc=reject")


def test_built_from_verdicts_alone() -> None:
    verdicts = NetworkVerdicts(
        from_domain="shop.test",
        spf=SpfVerdict("softfail", "mailfrom", "soft.test", "a@soft.test", GOOD_IP),
        dkim=[DkimSignature("shop.test", "sel", "fail", "body hash mismatch")],
        dmarc=DmarcVerdict("fail", "quarantine", "shop.test", "shop.test"))
    assert authentication_results(verdicts, "mx.example") == (
        'mx.example; spf=softfail smtp.mailfrom=a@soft.test; dkim=fail reason="body hash mismatch" '
        "header.d=shop.test header.s=sel; dmarc=fail header.from=shop.test policy.dmarc=quarantine")


def test_nothing_checked_says_none() -> None:
    assert authentication_results(NetworkVerdicts(), "mx.example") == "mx.example; dkim=none"


def test_without_network_the_result_carries_no_header(test_dns: DnsFixture) -> None:
    from tests.network.conftest import network_config

    offline = Scanner(network_config(test_dns.server.address), network=False)
    assert offline.scan(letter()).auth_results == ""


def test_an_unset_authserv_id_names_the_mta_else_this_host_never_localhost(
        scanner: Scanner, test_dns: DnsFixture) -> None:
    """dns.authserv_id empty took socket.getfqdn(), which answers "localhost" where /etc/hosts
    maps the host name to 127.0.0.1 after "localhost" (this test host, many containers): every
    message said `localhost;`, and a downstream filter trusting results by the MX's name saw
    none. The milter passes Postfix's name for itself (myhostname, the `j` macro); `mailsift
    check`, told nothing, names this host as myhostname takes it by default. A configured
    dns.authserv_id still wins over both."""
    config = network_config(test_dns.server.address)
    unset = Scanner(parse_config({"dns": {**config.dns.model_dump(), "authserv_id": ""}}, "test"))
    assert unset.scan(letter()).auth_results.split(";")[0] == host_name()
    assert not is_loopback_name(host_name())
    told = Envelope(client_ip=GOOD_IP, helo="mail.shop.test", mail_from="tom@shop.test",
                    rcpt_to=["anna@our.test"], receiver="mx.example.org")
    assert unset.scan(letter(), told).auth_results.startswith("mx.example.org; spf=pass ")
    assert scanner.scan(letter(), told).auth_results.startswith("mx.our.test; spf=pass ")


def test_check_shows_the_authentication_results_the_milter_would_add(
        test_dns: DnsFixture, tmp_path: Path) -> None:
    """`mailsift check --network` printed the X-Spam headers and the rule table, but not the
    Authentication-Results it computed, not even with --json: an admin debugging why DMARC
    failed for a message had to send it through the milter to read them. Without the network
    checks no header would be added, and JSON says null."""
    config = tmp_path / "mailsift.toml"
    config.write_text(to_toml({"bayes": {"store": f"sqlite:///{tmp_path / 'bayes.sqlite'}"},
                               "dns": {"nameservers": [test_dns.server.address],
                                       "authserv_id": "mx.our.test"}}))
    message = tmp_path / "letter.eml"
    message.write_bytes(letter())

    def check(*args: str) -> str:
        done = CliRunner().invoke(cli, ["--config", str(config), "check", *args, str(message)])
        assert done.exit_code == 0, done.output
        return done.output

    results = "mx.our.test; dkim=none; dmarc=fail header.from=shop.test policy.dmarc=reject"
    text = check("--network")
    assert ("\nAuthentication-Results: mx.our.test; dkim=none; dmarc=fail\n"
            "\theader.from=shop.test policy.dmarc=reject\n\n Score |") in text, text
    assert json.loads(check("--network", "--json"))["authentication_results"] == results
    assert "Authentication-Results" not in check("--no-network")
    assert json.loads(check("--no-network", "--json"))["authentication_results"] is None
