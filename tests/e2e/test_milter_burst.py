"""A busy relay's peak through the real Postfix: dozens of SMTP sessions at once, some messages of
several MB, some slow to score, against a pool of two scoring workers.

What an administrator counts on, checked after each burst: no message lost or refused that the
config did not ask to refuse (delivered + quarantined + tempfailed == sent, and every 451 is the
milter's on_error with its reason logged next to the queue id); each transaction answered within
`milter.timeout`, so Postfix never has to fall back on its own milter timeouts; the waiting is
visible in the metrics; and once the burst is over the milter is as it was: its workers idle and
scoring, and no file descriptors or threads left behind (read from /proc/<pid>).

Sized for a 2-core machine shared with other work: 40 sessions, each test well under a minute.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from statistics import quantiles

from mailsift.config import parse_config
from mailsift.scanner import Scanner
from tests.e2e.conftest import MilterFactory, Mta
from tests.e2e.messages import QUARANTINE_MARK, SLOW_MARK, TAG_MARK, make_message
from tests.e2e.test_milter_failsafe import assert_accounted_for, assert_scored_normally_after
from tests.e2e.test_milter_metrics import samples, start_exporting, status_word
from tests.support.milter_process import MilterProcess
from tests.support.procs import children
from tests.support.smtp_client import Sent

BOB = "bob@example.com"
SESSIONS = 40
BIG_BYTES = 3 * 1024 * 1024  # an office attachment: three times scan.max_bytes (1 MiB)
ON_ERROR_TEXT = "Temporary failure while scanning"  # the milter's 451, not Postfix's own
SETTLE_S = 10.0  # how long the milter may take to drop what a burst left behind


@dataclass(frozen=True)
class Usage:
    """What the milter process holds, from /proc."""

    fds: int
    threads: int
    rss_mb: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        proc = Path(f"/proc/{pid}")
        status = (proc / "status").read_text()
        rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
        return cls(len(os.listdir(proc / "fd")), len(os.listdir(proc / "task")), rss_kb / 1024)


def big_message(*marks: str) -> tuple[bytes, str]:
    """A short letter with a BIG_BYTES attachment (incompressible, as a PDF or a photo is)."""
    raw, message_id = make_message(*marks)
    msg = EmailMessage()
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        msg[name] = re.search(rf"^{name}: (.*?)\r$".encode(), raw, re.MULTILINE).group(1).decode()  # type: ignore[union-attr]
    msg.set_content("Hi Bob,\n\nthe scans you asked for are attached.\n\nAlice\n" +
                    "".join(f"\n{mark}\n" for mark in marks))
    msg.add_attachment(os.urandom(BIG_BYTES), maintype="application", subtype="pdf",
                       filename="scans.pdf")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")), message_id


def burst_messages(count: int, slow: int) -> list[tuple[bytes, str]]:
    """`count` messages: `slow` that keep a worker busy on a slow rule, four big ones, and the
    rest plain, tagged or to be quarantined in turn."""
    messages = [make_message(TAG_MARK, SLOW_MARK) for _ in range(slow)]
    messages += [big_message(), big_message(TAG_MARK), big_message(QUARANTINE_MARK), big_message()]
    kinds: list[tuple[str, ...]] = [(), (TAG_MARK,), (QUARANTINE_MARK,)]
    messages += [make_message(*kinds[n % 3]) for n in range(count - len(messages))]
    return messages


@dataclass
class Burst:
    """What the clients of one burst saw, and how the milter's memory went meanwhile."""

    sent: dict[str, Sent]
    seconds: float
    rss_peak_mb: float = 0.0
    timings: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.sent) / self.seconds


def send_burst(mta: Mta, milter: MilterProcess, messages: list[tuple[bytes, str]]) -> Burst:
    """Every message in its own SMTP session, all at once, while sampling the milter's RSS."""
    peak = [0.0]
    with sample_rss(milter.pid, peak):
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(messages)) as clients:
            replies = list(clients.map(lambda m: mta.send(m[0], BOB), messages))
        took = time.monotonic() - started
    sent = {message_id: reply for (_, message_id), reply in zip(messages, replies, strict=True)}
    return Burst(sent, took, peak[0], sorted(reply.seconds for reply in replies))


@contextmanager
def sample_rss(pid: int, peak: list[float]) -> Iterator[None]:
    """Keep the highest RSS of `pid` seen every 50 ms in peak[0] while the block runs."""
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], Usage.of(pid).rss_mb)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()


def settled(milter: MilterProcess, before: Usage) -> Usage:
    """The milter's usage once it dropped what the burst left (or as it is after SETTLE_S)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        now = Usage.of(milter.pid)
        if (now.fds <= before.fds and now.threads <= before.threads) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def tempfail_reasons(mta: Mta, milter: MilterProcess, burst: Burst) -> list[str]:
    """Why each refused message was refused, as the milter logged it next to its queue id; each
    must be the milter's own 451 (on_error), not Postfix's fallback for a milter that failed it."""
    reasons = []
    for message_id, reply in burst.sent.items():
        if reply.accepted:
            continue
        assert reply.code == 451 and ON_ERROR_TEXT in reply.text, f"{message_id}: {reply.reply}"
        queue_id = mta.queue_id(message_id)
        assert queue_id, f"{message_id}: no queue id in the maillog"
        logged = milter.wait_for_log(rf"{queue_id}: (.*); applying on_error=tempfail", 5)
        reasons.append(logged.group(1))
    return reasons


def postfix_milter_warnings(mta: Mta, offset: int) -> list[str]:
    """What Postfix said about the milter itself (a timeout, a dropped connection) since `offset`."""
    return [line for line in mta.postfix.log_text(since=offset).splitlines()
            if re.search(r"warning: milter", line)]


def waits(milter: MilterProcess) -> tuple[int, int]:
    """From mailsift_worker_wait_seconds: how many messages waited for a worker, and how many of
    them longer than a second."""
    found = {(s.name, s.labels.get("le")): s.value for s in samples(milter)
             if s.name.startswith("mailsift_worker_wait_seconds")}
    count = int(found[("mailsift_worker_wait_seconds_count", None)])
    return count, count - int(found[("mailsift_worker_wait_seconds_bucket", "1.0")])


def report(name: str, burst: Burst, before: Usage, after: Usage, milter_times: list[float]) -> None:
    """The figures, shown with `pytest -s` (and kept in the log of a failed run)."""
    p50, p95 = percentiles(milter_times)
    print(f"\n{name}: {len(burst.sent)} sessions in {burst.seconds:.1f} s = {burst.rate:.1f} msg/s; "
          f"SMTP p50 {percentiles(burst.timings)[0]:.2f} s max {burst.timings[-1]:.2f} s; "
          f"milter p50 {p50 * 1000:.0f} ms p95 {p95 * 1000:.0f} ms; "
          f"RSS {before.rss_mb:.0f} -> peak {burst.rss_peak_mb:.0f} -> {after.rss_mb:.0f} MB; "
          f"fds {before.fds} -> {after.fds}; threads {before.threads} -> {after.threads}")


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = quantiles(values, n=20, method="inclusive")
    return cuts[9], cuts[18]


def milter_times(milter: MilterProcess, start: int = 0) -> list[float]:
    """Each message's time in the milter (end of message to reply), from its log line."""
    return [int(m.group(1)) / 1000 for line in milter.lines[start:]
            if (m := re.search(r" action=\S+ .* time=(\d+)ms$", line))]


def test_burst_of_sessions_is_fully_accounted_for_and_leaves_the_milter_as_it_was(
        mta: Mta, start_milter: MilterFactory) -> None:
    """Two bursts of 40 sessions at once, four of them 3 MB, four with a rule that takes its whole
    rule budget, against two workers: every message is scored (the load fits in the budget, so
    no 451), each within milter.timeout; the metrics show the waiting; after each burst nothing
    is left behind, and the second leaves the milter no bigger than the first."""
    timeout = 20.0
    milter = start_exporting(start_milter, {"milter": {"workers": 2, "timeout": timeout,
                                                       "on_error": "tempfail"}})
    assert_scored_normally_after(mta)  # every thread and buffer a message needs exists now
    before = Usage.of(milter.pid)
    settled_after = []
    for name in ("burst 1", "burst 2"):
        mark, offset = milter.mark(), mta.postfix.log_offset()
        burst = send_burst(mta, milter, burst_messages(SESSIONS, slow=4))
        where = assert_accounted_for(mta, milter, burst.sent)
        assert set(where.values()) == {"delivered", "quarantined"}, where
        assert burst.timings[-1] < timeout, f"a session took {burst.timings[-1]:.1f} s"
        times = milter_times(milter, mark)
        assert len(times) == SESSIONS and max(times) < timeout, times
        assert not postfix_milter_warnings(mta, offset)
        settled_after.append(settled(milter, before))
        report(name, burst, before, settled_after[-1], times)
        assert settled_after[-1].fds <= before.fds, (before, settled_after[-1])
        assert settled_after[-1].threads <= before.threads, (before, settled_after[-1])
    # Slow messages hold both workers for seconds: the others' wait must show, every message counted.
    waited, over_a_second = waits(milter)
    assert waited == 2 * SESSIONS + 1 and over_a_second > 0, (waited, over_a_second)
    # The allocator keeps some of a burst's buffers (+2 to +8 MB measured, less with each burst,
    # about 93 MB after six): a leak would keep what its four big messages brought, burst after burst.
    assert settled_after[1].rss_mb < settled_after[0].rss_mb + 4 * BIG_BYTES / 2**20, settled_after
    assert_scored_normally_after(mta)


def test_with_every_worker_busy_each_message_is_answered_within_milter_timeout(
        mta: Mta, start_milter: MilterFactory) -> None:
    """Overload: four messages whose slow rule would run for 20 s hold both workers until
    milter.timeout (4 s) kills them, while 16 more arrive. Those wait at most half the timeout,
    then get on_error; every 451 is one the config asked for (overrun or no free worker), each
    client is answered well before Postfix's own milter timeouts, and the pool is whole after."""
    timeout = 4.0
    milter = start_exporting(start_milter, {"milter": {"workers": 2, "timeout": timeout,
                                                       "on_error": "tempfail"},
                                            "scan": {"rule_budget": 20.0}})
    assert_scored_normally_after(mta)
    before = Usage.of(milter.pid)
    mark, offset = milter.mark(), mta.postfix.log_offset()
    messages = [make_message(TAG_MARK, SLOW_MARK) for _ in range(4)]
    messages += [make_message(TAG_MARK) for _ in range(16)]
    burst = send_burst(mta, milter, messages)
    assert_accounted_for(mta, milter, burst.sent)
    reasons = tempfail_reasons(mta, milter, burst)
    assert reasons and all(r.startswith(("no scoring worker free within 2s",
                                         f"scoring took longer than {timeout:g}s")) for r in reasons)
    times = milter_times(milter, mark)
    assert len(times) == len(messages) and max(times) < timeout + 1, times
    # What Postfix waits can be longer than the milter's own time: libmilter hands a session's
    # end of message to a thread of its pool, and when every thread sits in another message's
    # end of message it waits for one of them to finish, up to one milter.timeout more.
    assert burst.timings[-1] < 2 * timeout + 1, f"a session took {burst.timings[-1]:.1f} s"
    assert not postfix_milter_warnings(mta, offset)
    gave_up = sum(r.startswith("no scoring worker free") for r in reasons)
    waited, over_a_second = waits(milter)
    assert waited == len(messages) + 1 and over_a_second >= gave_up, (waited, over_a_second)
    after = settled(milter, before)
    report("every worker busy", burst, before, after, times)
    assert after.fds <= before.fds and after.threads <= before.threads, (before, after)
    assert_scored_normally_after(mta)
    # Workers are the fork server's children (it is the milter's): the two replacements, no more.
    assert len([w for child in children(milter.pid) for w in children(child)]) == 2


def test_big_message_is_scored_as_mailsift_check_scores_it(
        mta: Mta, start_milter: MilterFactory) -> None:
    """The milter hands a worker at most scan.max_bytes of body. The cut end of a 3 MB
    attachment was then scored as the sender's broken MIME (FACT_BOUNDARY_UNCLOSED and
    FACT_BAD_BASE64, 2.5 points): every big letter with an attachment started halfway to
    required_score, while `mailsift check` of the same file, which makes the cut itself, said 0."""
    milter = start_milter()
    raw, message_id = big_message()
    sent = mta.send(raw, BOB)
    assert sent.accepted, sent.reply
    status = mta.delivered(message_id).header("X-Spam-Status") or ""
    offline = Scanner(parse_config(milter.config, "test")).scan(raw)
    assert status_word(status, "tests") == (",".join(sorted(offline.rule_names)) or "none"), status
    assert status_word(status, "score") == f"{offline.score:.1f}", status
