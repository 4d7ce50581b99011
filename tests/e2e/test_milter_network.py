"""Network checks end to end: the client address Postfix reports decides, and the verdicts reach
the delivered message as an Authentication-Results header (issue #6, Done-when 4)."""

from __future__ import annotations

from tests.e2e.conftest import MilterFactory, Mta
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import letter
from tests.network.zone import BLOCK_ZONE, LISTED_IP
from tests.support.milter_process import merge

AUTHSERV_ID = "mx.our.test"
RECIPIENT = "anna@example.com"


def dns_overrides(nameserver: str) -> dict[str, object]:
    return {"dns": {"enabled": True, "nameservers": [nameserver], "timeout": 2.0,
                    "authserv_id": AUTHSERV_ID,
                    "blocklists": [{"zone": BLOCK_ZONE, "rule": "RCVD_IN_TEST_BL", "score": 2.5,
                                    "codes": ["127.0.0.2"]}]}}


def test_listed_client_gets_the_list_rule_and_authentication_results(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture) -> None:  # noqa: F811
    """With dns.authserv_id unset (the default) the header names the MX as Postfix names itself
    (myhostname, the `j` macro), and one claiming that name already, in any case, is forged and
    goes. It named socket.getfqdn(), "localhost" on a host whose /etc/hosts maps its name to
    127.0.0.1 after "localhost", a name no downstream filter trusts. (The other e2e tests of
    Authentication-Results set dns.authserv_id, which wins.)"""
    start_milter(merge(dns_overrides(test_dns.server.address), {"dns": {"authserv_id": ""}}))
    ours = mta.postfix.hostname
    forged = f"Authentication-Results: {ours.upper()}; spf=pass; dkim=pass; dmarc=pass\r\n".encode()
    raw = forged + letter()
    sent = mta.send(raw, RECIPIENT, sender="tom@shop.test",
                    xclient={"ADDR": LISTED_IP, "NAME": "mail.listed.test", "HELO": "mail.listed.test"})
    assert sent.accepted, sent.reply
    delivered = mta.delivered("<minutes-42@shop.test>")
    status = delivered.header("X-Spam-Status") or ""
    assert "RCVD_IN_TEST_BL" in status.replace("\n", "").replace("\t", "")
    results = [" ".join(v.split()) for v in delivered.headers("Authentication-Results")]
    assert results == [f"{ours}; spf=fail smtp.mailfrom=tom@shop.test; dkim=none; "
                       "dmarc=fail header.from=shop.test policy.dmarc=reject"]
