"""Network checks end to end: the client address Postfix reports decides, and the verdicts reach
the delivered message as an Authentication-Results header (issue #6, Done-when 4)."""

from __future__ import annotations

from tests.e2e.conftest import MilterFactory, Mta
from tests.network.conftest import DnsFixture, test_dns  # noqa: F401  (the session DNS server)
from tests.network.messages import letter
from tests.network.zone import BLOCK_ZONE, LISTED_IP

AUTHSERV_ID = "mx.our.test"
RECIPIENT = "anna@example.com"


def dns_overrides(nameserver: str) -> dict[str, object]:
    return {"dns": {"enabled": True, "nameservers": [nameserver], "timeout": 2.0,
                    "authserv_id": AUTHSERV_ID,
                    "blocklists": [{"zone": BLOCK_ZONE, "rule": "RCVD_IN_TEST_BL", "score": 2.5,
                                    "codes": ["127.0.0.2"]}]}}


def test_listed_client_gets_the_list_rule_and_authentication_results(
        mta: Mta, start_milter: MilterFactory, test_dns: DnsFixture) -> None:  # noqa: F811
    start_milter(dns_overrides(test_dns.server.address))
    forged = b"Authentication-Results: mx.our.test; spf=pass; dkim=pass; dmarc=pass\r\n"
    raw = forged + letter()
    sent = mta.send(raw, RECIPIENT, sender="tom@shop.test",
                    xclient={"ADDR": LISTED_IP, "NAME": "mail.listed.test", "HELO": "mail.listed.test"})
    assert sent.accepted, sent.reply
    delivered = mta.delivered("<minutes-42@shop.test>")
    status = delivered.header("X-Spam-Status") or ""
    assert "RCVD_IN_TEST_BL" in status.replace("\n", "").replace("\t", "")
    results = [" ".join(v.split()) for v in delivered.headers("Authentication-Results")]
    assert results == [f"{AUTHSERV_ID}; spf=fail smtp.mailfrom=tom@shop.test; dkim=none; "
                       "dmarc=fail header.from=shop.test policy.dmarc=reject"]
