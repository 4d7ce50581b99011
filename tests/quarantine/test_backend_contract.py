"""One contract for every quarantine backend: each test runs on local files + SQLite and on Redis."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailsift.config import parse_config
from mailsift.quarantine import review
from mailsift.quarantine.model import FORGED_KEY, QuarantineError, Query, add_event, forged_evidence
from mailsift.quarantine.store import QuarantineStore
from mailsift.quarantine.text import list_text, show_text
from tests.quarantine.conftest import make_message, make_meta
from tests.support.ports import LOOPBACK
from tests.support.sink import Received, SmtpSink

WINDOWS_1251 = (b"From: =?windows-1251?B?z+Xy8A==?= <petr@example.ru>\r\nTo: jane@example.org\r\n"
                b"Subject: =?windows-1251?B?z/Du4uXw6uA=?=\r\nContent-Type: text/plain; "
                b"charset=windows-1251\r\n\r\n") + "Привет, мир\r\n".encode("cp1251")


def test_put_keeps_the_message_byte_exact_and_indexes_it(store: QuarantineStore) -> None:
    meta = make_meta(subject="=?windows-1251?B?z/Du4uXw6uA=?=")
    message_id = store.put(WINDOWS_1251, meta)
    assert store.raw(message_id) == WINDOWS_1251
    record = store.meta(message_id)
    assert record["subject"] == "Проверка"
    assert record["size"] == len(WINDOWS_1251)
    assert (record["score"], record["required_score"], record["state"]) == (42.0, 5.0, "held")
    assert [r["name"] for r in record["rules"]] == ["BIG_RULE", "LOW_RULE"]
    assert record["client_ip"] == "192.0.2.7" and record["helo"] == "bad.example"
    assert "BIG_RULE" in record["reason"]
    assert store.ids() == [message_id]


def test_search_by_recipient_sender_subject_score_and_date(store: QuarantineStore) -> None:
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    a = store.put(make_message(), make_meta(["jane@example.org"], 42.0, "Cheap pills"))
    b = store.put(make_message("Your invoice"), make_meta(["bob@example.org"], 12.0, "Your invoice",
                                                          "billing@shop.example"))
    c = store.put(make_message("Old pills"), make_meta(["jane@example.org", "bob@example.org"], 20.0,
                                                       "Old PILLS", time=old))

    def ids(**kwargs: object) -> set[str]:
        return {r["id"] for r in store.search(Query(**kwargs))[0]}  # type: ignore[arg-type]

    assert ids(to=["jane@example.org"]) == {a, c}
    assert ids(to=[]) == set()
    assert ids(sender="shop.example") == {b}
    assert ids(subject="pills") == {a, c}
    assert ids(min_score=15.0, max_score=30.0) == {c}
    assert ids(since=datetime.now(UTC) - timedelta(days=1)) == {a, b}
    assert ids(subject="100%_") == set()  # LIKE wildcards are text, not patterns


def test_search_sorts_and_pages(store: QuarantineStore) -> None:
    for score in (12.0, 30.0, 21.0):
        store.put(make_message(f"s{score}"), make_meta(score=score, subject=f"s{score}"))
    records, total = store.search(Query(sort="score", descending=True, limit=2))
    assert total == 3
    assert [r["score"] for r in records] == [30.0, 21.0]
    rest, _ = store.search(Query(sort="score", descending=True, offset=2, limit=2))
    assert [r["score"] for r in rest] == [12.0]


def test_history_and_state_are_recorded(store: QuarantineStore) -> None:
    message_id = store.put(make_message(), make_meta())
    store.log(message_id, "admin", "released", "to jane@example.org", state="released")
    record = store.meta(message_id)
    assert record["state"] == "released"
    assert [(e["user"], e["action"], e["detail"]) for e in record["events"]] == [
        ("admin", "released", "to jane@example.org")]


def test_deleted_message_keeps_its_history_but_not_its_bytes(store: QuarantineStore) -> None:
    message_id = store.put(make_message(), make_meta())
    store.delete(message_id, "admin")
    with pytest.raises(QuarantineError, match="deleted"):
        store.raw(message_id)
    assert store.meta(message_id)["events"][-1]["action"] == "deleted"
    assert not store.exists(message_id)
    assert store.search(Query())[1] == 0


def test_expire_removes_only_old_messages(store: QuarantineStore) -> None:
    old = store.put(make_message("old"), make_meta(time=(datetime.now(UTC) - timedelta(days=40)).isoformat()))
    new = store.put(make_message("new"), make_meta())
    assert store.expire(datetime.now(UTC) - timedelta(days=30)).expired == 1
    assert store.ids() == [new]
    with pytest.raises(QuarantineError):
        store.meta(old)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "x" * 22 + "/..", "", "a" * 21, "..%2f" * 5])
def test_ids_that_are_not_ours_are_refused(store: QuarantineStore, bad: str) -> None:
    with pytest.raises(QuarantineError, match="not a quarantine id"):
        store.raw(bad)
    assert not store.exists(bad)


def test_unknown_id_is_an_error_not_a_crash(store: QuarantineStore) -> None:
    with pytest.raises(QuarantineError, match="no quarantined message"):
        store.meta("A" * 22)


def test_user_lists_are_kept_per_address(store: QuarantineStore) -> None:
    store.backend.set_listed("jane@example.org", "welcome", "friend@example.com", True)
    store.backend.set_listed("jane@example.org", "block", "spam.example", True)
    store.backend.set_listed("jane@example.org", "block", "gone.example", True)
    store.backend.set_listed("jane@example.org", "block", "gone.example", False)
    lists = store.backend.all_lists()
    assert lists["jane@example.org"].welcome == {"friend@example.com"}
    assert lists["jane@example.org"].block == {"spam.example"}


def test_marks_remember_a_value(store: QuarantineStore) -> None:
    assert store.backend.mark("digest:jane") is None
    store.backend.set_mark("digest:jane", "2024-01-01T00:00:00+00:00")
    assert store.backend.mark("digest:jane") == "2024-01-01T00:00:00+00:00"


def test_search_by_recipient_domain(store: QuarantineStore) -> None:
    """A hosting provider's admin asked about one customer's held mail could only list it
    address by address: `@domain` in `to` matches every address of that domain, and only it."""
    ours = store.put(make_message(), make_meta(["ann@customer.example", "joe@other.example"]))
    also = store.put(make_message("b"), make_meta(["bob@customer.example"]))
    store.put(make_message("c"), make_meta(["eve@sub.customer.example", "x@customer.example.net"]))
    found, total = store.search(Query(to=["@customer.example"], sort="time", descending=False))
    assert ([r["id"] for r in found], total) == ([ours, also], 2)
    found, _ = store.search(Query(to=["@other.example", "bob@customer.example"], sort="time",
                                  descending=False))
    assert [r["id"] for r in found] == [ours, also]


def test_since_and_until_in_another_time_zone_mean_the_same_instant(store: QuarantineStore) -> None:
    """`list --since 2024-05-01T09:00+02:00` found nothing on the SQLite index, which compared the
    text with its UTC times; the Redis index compared instants."""
    now = store.put(make_message(), make_meta())
    east = timezone(timedelta(hours=2))
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(east)
    assert [r["id"] for r in store.search(Query(since=hour_ago))[0]] == [now]
    assert store.search(Query(until=hour_ago))[1] == 0


def test_sort_by_sender_orders_the_sender_the_list_shows(store: QuarantineStore) -> None:
    """The list's sender column shows the From header, else the envelope sender (mail with no
    From, or an empty one). A sort by sender put such a message by the From it lacked, first,
    on the SQLite index, and by its envelope sender on Redis: the same list read in two orders."""
    for sender, shown in (("zoe@example.org", ""), ("adam@example.org", "Adam <adam@example.org>"),
                          ("x@example.net", "mallory@example.org")):
        meta = make_meta(sender=sender, subject=sender)
        meta["from"] = shown
        store.put(make_message(sender), meta)

    def senders(descending: bool) -> list[str]:
        found, _ = store.search(Query(sort="sender", descending=descending))
        return [r["from"] or r["mail_from"] for r in found]

    assert senders(False) == ["Adam <adam@example.org>", "mallory@example.org", "zoe@example.org"]
    assert senders(True) == ["zoe@example.org", "mallory@example.org", "Adam <adam@example.org>"]


def test_search_and_sort_ignore_case_in_every_script(store: QuarantineStore) -> None:
    """`quarantine list --subject Счёт` (and the web UI's search) found nothing on the SQLite
    index for a Subject 'Счёт за услуги', whose lower() and LIKE fold ASCII letters only; the
    Redis index lower-cased in Python, where 'STRASSE' still missed 'Straße'. Every backend
    compares case-folded text (str.casefold), sorting included."""
    bill = store.put(make_message("bill"), make_meta(subject="Счёт за услуги"))
    street = store.put(make_message("street"), make_meta(subject="Straße gesperrt"))
    meta = make_meta(subject="акция", sender="emile@example.fr")
    meta["from"] = "ÉMILE Zola <emile@example.fr>"
    emile = store.put(make_message("emile"), meta)

    def ids(**kwargs: object) -> set[str]:
        return {r["id"] for r in store.search(Query(**kwargs))[0]}  # type: ignore[arg-type]

    assert ids(subject="Счёт") == ids(subject="СЧЁТ") == ids(subject="счёт") == {bill}
    assert ids(subject="STRASSE") == ids(subject="straße") == {street}
    assert ids(sender="émile") == ids(sender="Émile zola") == {emile}
    subjects = [r["subject"] for r in store.search(Query(sort="subject", descending=False))[0]]
    assert subjects == ["Straße gesperrt", "акция", "Счёт за услуги"]  # s, а, с: as folded


def test_equals_are_listed_newest_first_on_every_backend(store: QuarantineStore) -> None:
    """Messages with the same score, sender or subject came in opposite orders: the SQLite index
    listed equals by their (random) id, in a descending sort as in an ascending one, and Redis
    by the reverse of that id order in a descending sort; so the same list read in two orders,
    and a page over ties could show another set of messages. Among equals the newest comes
    first now, on every backend, whichever way the sort goes."""
    start = datetime.now(UTC) - timedelta(hours=1)

    def put(n: int, score: float, sender: str, subject: str) -> str:
        when = (start + timedelta(minutes=n)).isoformat()
        return store.put(make_message(f"m{n}"), make_meta(score=score, subject=subject,
                                                          sender=sender, time=when))

    ties = [put(n, 20.0, "same@example.org", "Same") for n in range(6)]
    low, high = put(7, 10.0, "abe@example.org", "Aaa"), put(8, 30.0, "zed@example.org", "Zzz")
    newest_first = ties[::-1]
    for sort in ("score", "sender", "subject"):
        for descending, expected in ((True, [high, *newest_first, low]),
                                     (False, [low, *newest_first, high])):
            found, _ = store.search(Query(sort=sort, descending=descending))
            assert [r["id"] for r in found] == expected, (sort, descending)
            pages = [store.search(Query(sort=sort, descending=descending, offset=offset,
                                        limit=3))[0] for offset in (0, 3, 6)]
            assert [r["id"] for page in pages for r in page] == expected, (sort, descending)


def test_a_release_killed_after_sending_may_have_been_released_and_needs_again(
        store: QuarantineStore, tmp_path: Path) -> None:
    """The releasing process is killed while Postfix takes the message (the sink holds its
    DATA): the mail went out, and its record was never written. It read "held", and the next
    release (an admin releasing the list again) sent Jane a second copy. Now the release is
    recorded before it is sent: the message reads "may have been released", list and show say
    so, and only --again sends another copy, after which it reads "released"."""
    held = store.put(make_message(), make_meta(["jane@example.org", "bob@example.org"]))
    releaser: list[int] = []
    forked = threading.Event()

    def kill_the_releaser(received: Received) -> None:
        if forked.wait(10) and releaser:
            os.kill(releaser.pop(), signal.SIGKILL)

    with SmtpSink(on_receive=kill_the_releaser) as sink:
        config = parse_config({"quarantine": {"dir": str(tmp_path / "q"),
                                              "release_via": f"{LOOPBACK}:{sink.port}"}}, "test")
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child, which the sink kills
            try:
                review.release(config, store, held, "admin", ["jane@example.org"])
            finally:
                os._exit(0)
        releaser.append(child)
        forked.set()
        assert os.waitpid(child, 0)[1] == signal.SIGKILL
        [listed], _ = store.search(Query())
        assert listed["state"] == store.meta(held)["state"] == "releasing"
        assert "  released?  " in list_text([listed], 1, 1, 1)
        unsure = (r"may have been released at \d{4}-\d\d-\d\d \d\d:\d\d UTC to jane@example\.org "
                  r"\(by admin\): it began, and whether the mail was sent is not recorded: it is "
                  r"still being sent, or the quarantine index failed or the release was "
                  r"stopped before it recorded that")
        assert re.search(rf"^Released\?:   M{unsure[1:]}; to send another copy: mailsift "
                         rf"quarantine release {held} --again$", show_text(listed), re.M)
        with pytest.raises(review.AlreadyReleased, match=rf"^message {held} {unsure} \(release "
                           r"again on purpose: --again\)$"):
            review.release(config, store, held, "admin", ["jane@example.org"])
        assert review.release(config, store, held, "admin") == ["bob@example.org"]
        assert store.meta(held)["state"] == "releasing"  # Jane's copy is still unsure
        assert review.release(config, store, held, "admin", ["jane@example.org"],
                              again=True) == ["jane@example.org"]
        assert [m.recipients for m in sink.messages] == [
            ("jane@example.org",), ("bob@example.org",), ("jane@example.org",)]
    record = store.meta(held)
    assert (record["state"], record["released_to"]) == ("released", ["bob@example.org",
                                                                     "jane@example.org"])
    assert "releasing" not in record and store.search(Query())[0][0]["state"] == "released"


def test_two_changes_of_one_record_at_once_both_stay(
        open_index: Callable[[], QuarantineStore]) -> None:
    """A record change read the record, let its edit change it and wrote it back, with nothing
    between the read and the write: what another process changed meanwhile (a learning's
    history line while a release recorded itself, a delete) was undone by the later write, and
    two releases both read "held". Here one change's edit waits while another store, with
    connections of its own as another process has, adds a history line to the same record:
    both edits are kept, whichever waits for the other."""
    releasing, learning = open_index(), open_index()
    held = releasing.put(make_message(), make_meta())
    editing, go_on = threading.Event(), threading.Event()

    def slow_release(record: dict[str, object]) -> None:
        editing.set()
        assert go_on.wait(10)
        add_event(record, "admin", "released", "to jane@example.org")  # type: ignore[arg-type]
        record["state"] = "released"

    with ThreadPoolExecutor(2) as pool:
        released = pool.submit(releasing.change, held, slow_release)
        assert editing.wait(10)
        learned = pool.submit(learning.log, held, "jane", "learned", "spam: learned as spam")
        wait_for([learned], timeout=0.3)  # done at once where nothing makes it wait for the edit
        go_on.set()
        released.result(10), learned.result(10)
    record = learning.meta(held)
    assert record["state"] == "released"
    assert sorted((e["user"], e["action"]) for e in record["events"]) == [
        ("admin", "released"), ("jane", "learned")]
    assert learning.search(Query())[0][0]["state"] == "released"  # the summary a list reads


def test_the_forged_results_the_milter_removed_stay_with_the_record_within_bounds(
        store: QuarantineStore) -> None:
    """The held copy is without the Authentication-Results that claimed our name (a released
    copy must not carry them), and nothing else kept them: a reviewer never learnt the message
    came with forged results. The record keeps the count and the first three, each cut to 200
    characters, through a change of the record too; a message held without any, or by an older
    version, shows no such line."""
    claims = ["mx.our.test;\r\n\tdkim=pass header.d=bank.example",
              "mx.our.test; spf=pass " + "x" * 100_000, *["mx.our.test; dmarc=pass"] * 4998]
    forged = store.put(make_message(), {**make_meta(), FORGED_KEY: forged_evidence(claims)})
    plain = store.put(make_message(), make_meta())
    store.log(forged, "admin", "viewed")
    record = store.meta(forged)
    assert record[FORGED_KEY] == {"count": 5000, "kept": [
        "mx.our.test; dkim=pass header.d=bank.example",
        "mx.our.test; spf=pass " + "x" * 177 + "…", "mx.our.test; dmarc=pass"]}
    assert (f"Forged auth: 5000 Authentication-Results claiming this host's name, removed from "
            f"the held copy: mx.our.test; dkim=pass header.d=bank.example | mx.our.test; spf=pass "
            f"{'x' * 177}… | mx.our.test; dmarc=pass (and 4997 more)\n") in show_text(record)
    assert FORGED_KEY not in store.meta(plain) and "Forged" not in show_text(store.meta(plain))
