"""Fixtures for the end-to-end tests: one private Postfix and one SMTP sink for the whole session,
and `mailsift milter` processes started per module or per test with their own config.

Postfix's first start takes 2-3 s, so it is started once; every milter process listens on the
same session port (`milter_port`), so switching milters needs no Postfix reload. Only
`milter_default_action` is changed per test, with `postconf` + `reload`, when a test needs it.

Nothing here is autouse: tests/e2e also holds tests that need neither Postfix nor a milter.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailsift.quarantine.store import QuarantineStore
from tests.support import postfix as postfix_support
from tests.support.milter_process import MilterProcess, merge
from tests.support.ports import LOOPBACK, LOOPBACK6, free_port
from tests.support.postfix import PostfixError, PostfixInstance
from tests.support.redis_server import RedisServer
from tests.support.sink import Received, SmtpSink
from tests.support.smtp_client import Sent, send

E2E_DIR = Path(__file__).parent
TEST_RULES = E2E_DIR / "rules" / "e2e.cf"

# Action bands of the test config, far apart so the shipped rules (a few points either way on
# the test messages) cannot move a message into another band; rules/e2e.cf puts each marker word
# in the middle of one band.
REQUIRED_SCORE = 5.0
REWRITE_SUBJECT = 20.0
QUARANTINE = 40.0
REJECT = 80.0
SUBJECT_TAG = "[SPAM-E2E]"
REJECT_TEXT = "Refused by the mailsift e2e policy"

DELIVERY_TIMEOUT_S = 15.0


def base_config(directory: Path) -> dict[str, Any]:
    """A complete milter config with every path under `directory` (bayes, quarantine, local.cf)."""
    return {
        "scoring": {"required_score": REQUIRED_SCORE},
        "scan": {"rule_budget": 1.0},
        "rules": {"shipped": True, "paths": [str(TEST_RULES)],
                  "local_cf": str(directory / "local.cf")},
        "bayes": {"store": f"sqlite:///{directory / 'bayes.sqlite'}"},
        "milter": {"workers": 2, "timeout": 20.0, "on_error": "tempfail"},
        "actions": {"rewrite_subject": REWRITE_SUBJECT, "quarantine": QUARANTINE,
                    "reject": REJECT, "subject_tag": SUBJECT_TAG, "reject_text": REJECT_TEXT},
        "quarantine": {"dir": str(directory / "quarantine")},
    }


@pytest.fixture(scope="session")
def postfix_available() -> None:
    if not postfix_support.available():
        pytest.skip("Postfix is not installed (/usr/sbin/postfix): apt-get install postfix")


@pytest.fixture(scope="session")
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture(scope="session")
def milter_port() -> int:
    """The one port every milter process of the session listens on (Postfix points there)."""
    return free_port()


@pytest.fixture(scope="session")
def postfix(postfix_available: None, sink: SmtpSink, milter_port: int) -> Iterator[PostfixInstance]:
    instance = PostfixInstance(sink.port, milter=f"inet:{LOOPBACK}:{milter_port}",
                               milter_default_action="tempfail")
    try:
        instance.start()
        yield instance
    finally:
        instance.cleanup()


@dataclass(frozen=True)
class Quarantined:
    id: str
    meta: dict[str, Any]
    raw: bytes


@dataclass
class Mta:
    """A test's handle on the session Postfix and sink: send, then find where each message went."""

    postfix: PostfixInstance
    sink: SmtpSink

    def send(self, raw: bytes, recipients: list[str] | str, *, sender: str = "alice@sender.example",
             plain: bool = False, xclient: dict[str, str] | None = None,
             smtputf8: bool = False, ipv6: bool = False) -> Sent:
        """Submit through the milter-enabled smtpd (or the no-milter one with `plain`; with `ipv6`,
        the milter-enabled one on [::1], over a real IPv6 connection)."""
        rcpts = [recipients] if isinstance(recipients, str) else recipients
        port = self.postfix.plain_port if plain else self.postfix.smtpd_port
        if ipv6:
            assert self.postfix.ipv6_port, "this host has no ::1"
            port = self.postfix.ipv6_port
        return send(port, sender, rcpts, raw, xclient=xclient, smtputf8=smtputf8,
                    host=LOOPBACK6 if ipv6 else LOOPBACK)

    def delivered(self, message_id: str, timeout: float = DELIVERY_TIMEOUT_S) -> Received:
        return self.sink.wait_for_id(message_id, timeout)

    def settle(self) -> None:
        """Wait until Postfix holds no message: whatever was accepted is delivered or bounced."""
        self.postfix.wait_queue_empty()

    def not_delivered(self, message_id: str) -> bool:
        """True once the queue is empty and the sink never saw the message (nor a bounce of it)."""
        self.settle()
        return not self.sink.find(message_id) and not any(
            message_id.encode() in m.raw for m in self.sink.messages)

    @staticmethod
    def quarantined(milter: MilterProcess, message_id: str) -> list[Quarantined]:
        """Every copy of the message with this Message-ID in the milter's quarantine."""
        store = QuarantineStore(milter.config["quarantine"]["dir"])
        found = []
        for qid in store.ids():
            raw = store.raw(qid)
            head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
            if re.search(rb"(?im)^message-id:\s*" + re.escape(message_id.encode()), head):
                found.append(Quarantined(qid, store.meta(qid), raw))
        return found

    def queue_id(self, message_id: str) -> str | None:
        """Postfix's queue id for a message, from cleanup's `message-id=` log line."""
        pattern = re.compile(rf"(\w+): message-id={re.escape(message_id)}")
        deadline = time.monotonic() + 5
        while True:
            found = pattern.search(self.postfix.log_text())
            if found or time.monotonic() > deadline:
                return found.group(1) if found else None
            time.sleep(0.05)


@pytest.fixture
def mta(postfix: PostfixInstance, sink: SmtpSink) -> Iterator[Mta]:
    """Postfix with an empty queue and a sink emptied for this test."""
    if postfix.queued():
        try:
            postfix.wait_queue_empty(5)
        except PostfixError:
            postfix.purge_queue()  # left by an earlier failure, already reported there
    sink.clear()
    handle = Mta(postfix, sink)
    yield handle
    # A test must not leave mail behind for the next one (e.g. a message stuck in `deferred`):
    # fail this test, then clean up so the next one starts empty.
    try:
        postfix.wait_queue_empty()
    except PostfixError:
        postfix.purge_queue()
        raise


def module_milter(overrides: Mapping[str, Any] | None = None, doc: str = "") -> Any:
    """A module-scoped `milter` fixture, for `milter = module_milter(...)` in a test module: one
    milter with `overrides` for every test of the module, as each start loads the rules."""
    @pytest.fixture(scope="module")
    def milter(postfix: PostfixInstance, milter_port: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilterProcess]:
        process = launch_milter(postfix, milter_port, tmp_path_factory.mktemp("milter"), overrides)
        yield process
        process.stop()
    milter.__doc__ = doc
    return milter


MilterFactory = Callable[..., MilterProcess]


def launch_milter(postfix: PostfixInstance, port: int, directory: Path,
                  overrides: Mapping[str, Any] | None = None, *, default_action: str = "tempfail",
                  env: Mapping[str, str] | None = None) -> MilterProcess:
    """Point Postfix at `port` with `default_action`, then start a milter there; wait for ready."""
    config = merge(base_config(directory), overrides or {})
    postfix.set_milter(f"inet:{LOOPBACK}:{port}", default_action)
    return MilterProcess(config, directory, port=port, env=env).start()


@pytest.fixture
def start_milter(milter_port: int, postfix: PostfixInstance, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilterFactory]:
    """Start `mailsift milter` with `base_config` + overrides on the session milter port.

    `default_action` sets Postfix's milter_default_action for this test (reload if it changes).
    """
    started: list[MilterProcess] = []

    def start(overrides: Mapping[str, Any] | None = None, *, default_action: str = "tempfail",
              env: Mapping[str, str] | None = None) -> MilterProcess:
        process = launch_milter(postfix, milter_port, tmp_path_factory.mktemp("milter"),
                                overrides, default_action=default_action, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in started:  # shown under "Captured stdout teardown"
            print(f"--- mailsift milter stderr (exit status {process.returncode}):\n{process.log}")
        print(f"--- postfix {postfix.log_tail(40)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def redis_for_bayes(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that the test may stop (the store "going away" mid-run)."""
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()
