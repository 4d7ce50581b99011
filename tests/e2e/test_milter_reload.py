"""`systemctl reload mailsift-milter` (SIGUSR1) through a real Postfix: new rules and settings
without a restart, no message deferred meanwhile, and a broken edit never takes the filter down."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mailsift.milter.workers import STOP_GRACE_S
from tests.e2e.conftest import REJECT_TEXT, Mta, base_config
from tests.e2e.messages import REJECT_MARK, SLOW_MARK, make_message
from tests.e2e.test_milter_metrics import metric
from tests.engine.test_pattern_cache import SLOW
from tests.support.milter_process import MilterProcess
from tests.support.ports import LOOPBACK, free_port
from tests.support.procs import alive, busy_process, children
from tests.support.redis_server import wait_until
from tests.support.smtp_client import Sent

StartMilter = Callable[..., MilterProcess]

NEW_MARK = "XE2ERELOADEDRULE"
LOCAL_RULE = f"body LOCAL_RELOADED /{NEW_MARK}/\nscore LOCAL_RELOADED 100.0\n"


def reload(milter: MilterProcess, outcome: str) -> None:
    """Send SIGUSR1 and wait for the log line that says how the reload ended."""
    start = len(milter.lines)
    os.kill(milter.pid, signal.SIGUSR1)
    milter.wait_for_log(outcome, timeout=60, start=start)


def local_cf(milter: MilterProcess) -> Path:
    return Path(milter.config["rules"]["local_cf"])


def test_a_rule_added_to_local_cf_hits_after_a_reload_and_no_message_waits_meanwhile(
        mta: Mta, start_milter: StartMilter) -> None:
    """Mail keeps flowing through the reload: Postfix's milter_default_action is tempfail here,
    so a message that met a milter without workers (as during a restart) would get a 451."""
    milter = start_milter()
    raw, message_id = make_message(NEW_MARK)
    assert mta.send(raw, "bob@example.com").accepted
    mta.delivered(message_id)

    local_cf(milter).write_text(LOCAL_RULE)
    replies: list[Sent] = []
    done = threading.Event()

    def keep_sending() -> None:
        while not done.is_set():
            replies.append(mta.send(make_message()[0], "bob@example.com"))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        reload(milter, r"reloaded: new messages go to 2 scoring workers")
        replies_before = len(replies)
        milter.wait_for_log("action=", start=len(milter.lines))  # one more after the switch
    finally:
        done.set()
        sender.join()
    assert len(replies) > replies_before
    assert [s.reply for s in replies if not s.accepted] == []

    raw, message_id = make_message(NEW_MARK)
    assert mta.send(raw, "bob@example.com").reply == f"550 5.7.1 {REJECT_TEXT}"
    assert mta.not_delivered(message_id)


def test_a_config_that_does_not_load_is_refused_and_the_running_one_serves_on(
        mta: Mta, start_milter: StartMilter) -> None:
    milter = start_milter()
    milter.config_path.write_text("[actions]\nreject = 'high'\n")
    reload(milter, rf"reload refused, still running the previous configuration: "
                   rf"{milter.config_path}: .*actions\.reject")
    raw, message_id = make_message(REJECT_MARK)
    assert mta.send(raw, "bob@example.com").reply == f"550 5.7.1 {REJECT_TEXT}"
    raw, message_id = make_message()
    assert mta.send(raw, "bob@example.com").accepted
    mta.delivered(message_id)


def test_a_changed_listen_address_waits_for_a_restart_and_other_settings_apply(
        mta: Mta, start_milter: StartMilter) -> None:
    """The socket is libmilter's until the process ends: a reload keeps serving on it, says so,
    and still applies the rest (here a new reject text)."""
    milter = start_milter()
    text = milter.config_path.read_text()
    port = milter.port
    milter.config_path.write_text(text.replace(f":{port}", f":{port + 1}")
                                  .replace(REJECT_TEXT, "Refused after the reload"))
    start = len(milter.lines)
    reload(milter, "reloaded: ")
    milter.wait_for_log("reload: milter.listen changed; it takes effect when the milter restarts",
                        start=start)
    raw, _ = make_message(REJECT_MARK)
    assert mta.send(raw, "bob@example.com").reply == "550 5.7.1 Refused after the reload"


def test_a_stop_during_a_reload_ends_the_starting_workers_without_a_traceback(
        tmp_path: Path) -> None:
    """SIGTERM while a reload starts its workers (no Postfix needed). Each worker then killed
    as it started printed a Python traceback into the journal, which an admin reads as a
    crash: BrokenPipeError from one saying "ready" to a pool already closed, and
    FileNotFoundError from one still reading its arguments when the exiting milter removed
    their shared semaphore. A worker killed because the milter stops ends without a word."""
    config = base_config(tmp_path)
    config["bayes"]["enabled"] = False
    with MilterProcess(config, tmp_path) as milter:
        start = milter.mark()
        os.kill(milter.pid, signal.SIGUSR1)
        milter.wait_for_log("starting 2 scoring workers", start=start)
        assert milter.stop() == 0
    assert [line for line in milter.lines[start:] if " INFO " not in line] == []


def test_a_worker_of_the_replaced_configuration_that_dies_while_draining_is_not_replaced(
        tmp_path: Path) -> None:
    """After a reload the old workers finish what they hold and are closed milter.timeout + 5 s
    later (no Postfix needed). One of them killed meanwhile was replaced: a process loading the
    old rules for no message, counted in mailsift_worker_restarts_total as if the new workers
    were failing."""
    config = base_config(tmp_path)
    config["bayes"]["enabled"] = False
    config["milter"] = {**config["milter"], "workers": 1,
                        "metrics_listen": f"{LOOPBACK}:{free_port()}"}
    with MilterProcess(config, tmp_path) as milter:
        (old,) = {pid for server in children(milter.pid) for pid in children(server)}
        reload(milter, "reloaded: ")
        start = milter.mark()
        os.kill(old, signal.SIGKILL)
        died = milter.wait_for_log(rf"scoring worker {old} .*had died while idle.*", start=start)
        assert died[0].endswith("not replaced, as its pool is closing"), died[0]
        assert metric(milter, "mailsift_worker_restarts_total") == 0


def slow_to_compile(count: int) -> str:
    """local.cf rules whose patterns hyperscan takes seconds over (each probe is given up after
    0.25 s), new to the rules cache on every run: a reload compiles for seconds."""
    pattern = SLOW.decode()
    return "".join(f"body LOCAL_SLOW_{i} /{pattern.replace('cash', f'cash|{uuid.uuid4().hex}été')}/i\n"
                   for i in range(count))


def test_a_stop_while_a_reload_compiles_answers_the_mail_in_flight_and_leaves_no_process(
        mta: Mta, start_milter: StartMilter) -> None:
    """SIGTERM (systemctl stop) while a reload compiles new rules, and a message is being
    scored (its slow rule would run for 10 s). The stop closed the worker's pipe and then
    waited 10 s for it, so the message lost its verdict and met Postfix's milter_default_action
    as the milter exited. Now it gets the milter's own on_error STOP_GRACE_S into the stop,
    logged, and the milter ends soon after, with no traceback and none of its processes (the
    worker, the compile's) left."""
    milter = start_milter({"scan": {"rule_budget": 10.0}, "milter": {"workers": 1}})
    local_cf(milter).write_text(slow_to_compile(20))
    sent: list[Sent] = []
    sender = threading.Thread(target=lambda: sent.append(
        mta.send(make_message(SLOW_MARK)[0], "bob@example.com")))
    sender.start()
    before = milter.workers()
    busy_process(before)
    start = milter.mark()
    os.kill(milter.pid, signal.SIGUSR1)
    wait_until(lambda: len(milter.workers()) > len(before), "the reload's compile to start")
    tree = milter.workers()
    stopping = time.monotonic()
    assert milter.stop() == 0
    took = time.monotonic() - stopping
    sender.join(30)
    assert sent[0].reply == "451 4.7.1 Temporary failure while scanning, try again later"
    assert took < STOP_GRACE_S + 2, took
    # The fork server and resource tracker end as they see the milter gone: a moment later.
    wait_until(lambda: not [pid for pid in tree if alive(pid)], "the milter's processes to end",
               timeout=3)
    said = [line for line in milter.lines[start:] if " INFO " not in line]  # no traceback
    assert len(said) == 1 and re.fullmatch(
        r"mailsift: ERROR mailsift\.milter: \w+: not scored: the milter is stopping, and scoring "
        r"did not end within 2s; applying on_error=tempfail", said[0]), said


def test_a_stop_soon_after_a_reload_gives_the_mail_of_both_configurations_one_grace(
        mta: Mta, start_milter: StartMilter) -> None:
    """SIGTERM within milter.timeout of a reload, with a slow message being scored by a worker
    of each configuration (the replaced one still draining). The stop closed the pools one
    after the other, each giving its message STOP_GRACE_S: it took twice the grace, and 2 s
    more for each reload still draining. The pools now share one grace."""
    milter = start_milter({"scan": {"rule_budget": 10.0}, "milter": {"workers": 1}})
    sent: list[Sent] = []

    def send_slow() -> threading.Thread:
        sender = threading.Thread(target=lambda: sent.append(
            mta.send(make_message(SLOW_MARK)[0], "bob@example.com")))
        sender.start()
        return sender

    before = milter.workers()
    senders = [send_slow()]
    busy_process(before)  # the first message is being scored
    reload(milter, "reloaded: ")
    senders.append(send_slow())
    busy_process(milter.workers() - before)  # and the second, by the new configuration's worker
    start = milter.mark()
    stopping = time.monotonic()
    assert milter.stop() == 0
    took = time.monotonic() - stopping
    for sender in senders:
        sender.join(30)
    assert [s.reply for s in sent] == ["451 4.7.1 Temporary failure while scanning, try again "
                                       "later"] * 2
    assert took < STOP_GRACE_S + 1.5, took  # not two graces: 4.1 s
    ended = [line for line in milter.lines[start:] if "did not end within 2s" in line]
    assert len(ended) == 2, milter.lines[start:]
