"""The SMTP replies a client sees from the milter, through a real Postfix, for texts an admin
may write in the config."""

from __future__ import annotations

from collections.abc import Callable

from mailsift.config import OutboundConfig
from mailsift.milter.sender_hold import sender_hold
from tests.e2e.conftest import Mta
from tests.e2e.messages import REJECT_MARK, TAG_MARK, make_message
from tests.support.milter_process import MilterProcess
from tests.support.redis_server import RedisServer

StartMilter = Callable[..., MilterProcess]


def test_reject_text_with_a_percent_sign_is_sent_as_written(
        mta: Mta, start_milter: StartMilter) -> None:
    """libmilter reads '%' in a reply as an escape, and pymilter refuses a single one: every
    message in the reject band met milter.on_error instead (451 here, delivered under accept)."""
    text = "Refused: 100% spam, see https://example.org/why?a=%41"
    start_milter({"actions": {"reject_text": text}})
    raw, message_id = make_message(REJECT_MARK)
    sent = mta.send(raw, "bob@example.com")
    assert sent.reply == f"550 5.7.1 {text}"
    assert mta.not_delivered(message_id)


def test_outbound_mail_keeps_our_verdict_headers_when_the_site_wants_them(
        mta: Mta, start_milter: StartMilter) -> None:
    """outbound.add_headers: a site that reads outbound verdicts in its own relay's logs."""
    start_milter({"outbound": {"add_headers": True}})
    raw, message_id = make_message()
    sent = mta.send(raw, "bob@example.com", xclient={"LOGIN": "alice"})
    assert sent.accepted, sent.reply
    status = mta.delivered(message_id).header("X-Spam-Status") or ""
    assert status.startswith("No, score=") and " tests=" in status, status


def test_a_login_whose_mail_keeps_scoring_as_spam_is_paused_and_others_are_not(
        mta: Mta, start_milter: StartMilter) -> None:
    """A compromised account's run: every message over the outbound reject threshold was refused,
    but nothing slowed the account down, so the rest of its spam (scored a little lower) left."""
    # The reply's text is the provider's own (a help page), % and all; it was fixed in the code.
    pause_text = "Sending paused for spam, 100% sure? See https://help.example/paused"
    milter = start_milter({"outbound": {"pause_after": 2, "pause_text": pause_text}})
    for _ in range(2):
        raw, message_id = make_message(TAG_MARK)  # far over outbound.reject
        assert mta.send(raw, "bob@example.com", xclient={"LOGIN": "alice"}).reply.startswith("550 ")
    raw, message_id = make_message()
    sent = mta.send(raw, "bob@example.com", xclient={"LOGIN": "alice"})
    assert sent.reply == f"451 4.7.1 {pause_text}"
    assert mta.not_delivered(message_id)
    # With where the login sent from, as an abuse desk asks, and the queue id of the message
    # that paused it (its own line and Postfix's): the pause line named neither.
    paused = milter.wait_for_log(r"outbound mail of SASL login alice paused: 2 messages in 60 "
                                 r"minutes scored as spam, the last (\S+) from client "
                                 r"localhost\[127\.0\.0\.1\]; their mail is deferred")
    milter.wait_for_log(rf"{paused[1]}: client=localhost\[127\.0\.0\.1\] login=alice .* action=reject")
    for login in ("carol", None):  # another customer, and inbound mail, go on as before
        raw, message_id = make_message()
        sent = mta.send(raw, "bob@example.com", xclient={"LOGIN": login} if login else None)
        assert sent.accepted, sent.reply
        mta.delivered(message_id)


def test_milter_hosts_sharing_a_pause_store_pause_a_login_at_their_common_count(
        mta: Mta, start_milter: StartMilter, redis_server: RedisServer) -> None:
    """Each host counted alone, so N milter hosts let a compromised account send up to N x
    pause_after spam; with outbound.pause_store one spam on another host counts here too."""
    with redis_server.client() as client:
        client.flushall()
    outbound = {"pause_after": 2, "pause_store": redis_server.url, "pause_key_prefix": "e2e:pause:"}
    other_host = sender_hold(OutboundConfig.model_validate(outbound))
    other_host.spam("SASL login alice")
    milter = start_milter({"outbound": outbound})
    raw, _ = make_message(TAG_MARK)
    assert mta.send(raw, "bob@example.com", xclient={"LOGIN": "alice"}).reply.startswith("550 ")
    milter.wait_for_log("outbound mail of SASL login alice paused: 2 messages in 60 minutes")
    assert other_host.held("SASL login alice")
    raw, message_id = make_message()
    sent = mta.send(raw, "bob@example.com", xclient={"LOGIN": "alice"})
    assert sent.reply == f"451 4.7.1 {OutboundConfig().pause_text}"
    assert mta.not_delivered(message_id)
