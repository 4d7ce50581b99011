"""Mail to a subaddress in the quarantine under Postfix's recipient_delimiter
(milter.recipient_delimiter): a search for jane@example.com, her list, `quarantine list --to` and
her digest find mail to jane+shop@example.com, which Postfix delivers to her, on every backend;
nobody finds mail that is not theirs (janet@, +jane@, owner-list@ for owner@, a web user's own
address such as anne-marie@ for anne@). Without a delimiter, every address is its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailsift.cli import cli
from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.quarantine.local import LocalBackend
from mailsift.quarantine.model import Query, addressed_to, extension_key
from mailsift.quarantine.redis_backend import RedisBackend
from mailsift.quarantine.store import QuarantineStore
from mailsift.redis_connect import RedisSettings
from tests.quarantine.conftest import make_message, make_meta
from tests.quarantine.test_digest import HASH
from tests.support.milter_process import to_toml
from tests.support.redis_server import RedisServer
from tests.support.sink import SmtpSink

JANE = "jane@example.com"
# Mail Postfix delivers to Jane under recipient_delimiter = "+-" (no mailbox of the whole name)
HERS = ["jane+shop@example.com",
        "Jane+Shop@EXAMPLE.COM.",  # any spelling of it (see test_idn_recipients.py)
        "jane+@example.com",  # an empty extension: Postfix cuts it to jane@
        "jane-news@example.com",  # "-" is in the set too
        "jane-a+b@example.com"]  # cut at the first delimiter, whichever it is
NOT_HERS = ["janet@example.com",
            "+jane@example.com",  # nothing before the delimiter: Postfix does not cut it
            "jane+shop@example.org",  # another domain
            "jane.shop@example.com",  # "." is no delimiter here
            "x+jane@example.com"]
# A web user's address, which is a mailbox of its own though "-" cuts it (see Subaddressing)
ANNE_MARIE = "anne-marie@example.com"
# Local parts Postfix never cuts (postconf(5), recipient_delimiter), with the owner they would
# have had, and one that it does cut for that owner
NEVER_CUT = {"owner@example.com": ("owner-list@example.com", "owner+x@example.com"),
             "list@example.com": ("list-request@example.com", "list+x@example.com"),
             "mailer@example.com": ("mailer-daemon@example.com", "mailer+x@example.com"),
             "double@example.com": ("double-bounce@example.com", "double+x@example.com")}
SITE = Subaddressing("+-", frozenset({ANNE_MARIE}))

Opener = Callable[[Subaddressing], QuarantineStore]


@pytest.fixture(params=["local", "redis", "redis-cluster"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the one (empty) index of each backend as a mailsift with the given subaddressing
    does; opened again, it is that index after a restart with another milter.recipient_delimiter."""
    if request.param == "local":
        return lambda sub: QuarantineStore(tmp_path / "q", LocalBackend(tmp_path / "q", subaddressing=sub))
    if request.param == "redis-cluster":  # the seeds fixture empties the cluster
        settings = RedisSettings("redis://", cluster=request.getfixturevalue("redis_cluster_seeds"))
    else:
        server: RedisServer = request.getfixturevalue("quarantine_redis")
        settings = RedisSettings(server.url)
        with server.client() as client:
            client.flushall()
    return lambda sub: QuarantineStore(tmp_path / "q",
                                       RedisBackend.from_settings(settings, subaddressing=sub))


def _held(store: QuarantineStore, *recipients: str) -> dict[str, str]:
    """Each recipient's own message: id -> recipient."""
    return {store.put(make_message(r), make_meta([r], subject=r)): r for r in recipients}


def _found(store: QuarantineStore, held: dict[str, str], *to: str) -> set[str]:
    return {held[r["id"]] for r in store.search(Query(to=list(to)))[0]}


def test_a_search_for_an_address_finds_the_mail_to_its_subaddresses(opened: Opener) -> None:
    """Postfix delivered jane+shop@'s mail to Jane; her list, search and digest (each a search
    for her address) showed none of it, only an admin saw it."""
    store = opened(SITE)
    held = _held(store, JANE, *HERS, *NOT_HERS)
    assert _found(store, held, JANE) == {JANE, *HERS}
    assert _found(store, held, "jane@EXAMPLE.com.") == {JANE, *HERS}
    assert _found(store, held, "jane+shop@example.com") == {"jane+shop@example.com",
                                                            "Jane+Shop@EXAMPLE.COM."}
    assert _found(store, held, "@example.com") == {JANE, *HERS, *NOT_HERS} - {"jane+shop@example.org"}


def test_without_a_delimiter_every_address_is_its_own(opened: Opener) -> None:
    """Postfix's default: jane+shop@ is another mailbox (a guard)."""
    store = opened(NO_SUBADDRESSES)
    held = _held(store, JANE, *HERS)
    assert _found(store, held, JANE) == {JANE}


def test_a_web_users_address_and_the_names_postfix_never_cuts_stay_their_own(opened: Opener) -> None:
    """With "-" in the set, anne-marie@ would be anne@'s; Postfix delivers to the mailbox of
    the whole name, and a login's address is one: its mail is hers alone. owner-list@,
    list-request@, mailer-daemon@ and double-bounce@ are never cut (postconf(5))."""
    store = opened(SITE)
    kept = [kept for kept, _cut in NEVER_CUT.values()]
    cut = [cut for _kept, cut in NEVER_CUT.values()]
    held = _held(store, ANNE_MARIE, "anne-bob@example.com", *kept, *cut)
    assert _found(store, held, "anne@example.com") == {"anne-bob@example.com"}
    assert _found(store, held, ANNE_MARIE) == {ANNE_MARIE}
    for owner, (kept_whole, cut_for_owner) in NEVER_CUT.items():
        assert _found(store, held, owner) == {cut_for_owner}, owner
        assert _found(store, held, kept_whole) == {kept_whole}


POOL = [JANE, *HERS, *NOT_HERS, ANNE_MARIE, "anne-bob@example.com", "anne-marie+x@example.com",
        "postmaster+x@example.com", "owner-list@example.com", "jörg+x@bücher.example",
        '"j doe+x"@example.com']
WANTED = [JANE, "anne@example.com", ANNE_MARIE, "postmaster@example.com", "owner@example.com",
          "jörg@xn--bcher-kva.example", "jane+shop@example.com", '"j doe"@example.com']


def test_every_backend_finds_exactly_the_mail_addressed_to_says_is_theirs(opened: Opener) -> None:
    """What a user's list shows (the search) is what she may open (`addressed_to`, which
    Viewer.owns asks): SQLite finds subaddresses by a range of its index, Redis by their
    owner's set; both agree with the one rule."""
    store = opened(SITE)
    held = _held(store, *POOL)
    for wanted in WANTED:
        expected = {r for r in POOL if addressed_to(wanted.lower(), r, SITE)}
        assert _found(store, held, wanted) == expected, wanted
    assert _found(store, held, "jörg@bücher.example") == {"jörg+x@bücher.example"}


def test_a_delimiter_set_changed_or_removed_applies_to_mail_already_held(opened: Opener) -> None:
    """Mail held before milter.recipient_delimiter was set is its owner's at once (the Redis
    index files it at the first search, as after an upgrade); removed or narrowed, the
    delimiter makes no one the owner of mail it no longer cuts for them."""
    before = opened(NO_SUBADDRESSES)
    held = _held(before, JANE, "jane+shop@example.com", "jane-news@example.com")
    assert _found(before, held, JANE) == {JANE}
    assert _found(opened(SITE), held, JANE) == set(held.values())
    assert _found(opened(Subaddressing("+")), held, JANE) == {JANE, "jane+shop@example.com"}
    assert _found(opened(NO_SUBADDRESSES), held, JANE) == {JANE}
    assert _found(opened(SITE), held, JANE) == set(held.values())


def test_expire_files_the_subaddresses_an_older_host_held(opened: Opener) -> None:
    """A host still running an older mailsift stores jane+shop@'s mail under its own address
    only; the next expire files it under Jane's, as it files other forms (507aee0)."""
    store = opened(SITE)
    assert _found(store, {}, JANE) == set()  # the first search: the filing is done, and marked
    held = _held(store, "jane+shop@example.com")
    backend = store.backend
    if isinstance(backend, RedisBackend):  # as an older host filed it (SQLite needs no filing)
        backend.client.srem(backend._key("rcpt", extension_key(JANE, "+-")), *held)
    store.expire(datetime(2000, 1, 1, tzinfo=UTC))
    assert _found(store, held, JANE) == {"jane+shop@example.com"}


@pytest.fixture
def digest_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def test_quarantine_list_to_and_the_digest_take_a_subaddress_as_its_owners(
        tmp_path: Path, digest_sink: SmtpSink) -> None:
    """`quarantine list --to jane@` and Jane's digest follow milter.recipient_delimiter."""
    config = tmp_path / "m.toml"
    config.write_text(to_toml({
        "milter": {"recipient_delimiter": "+"},
        "quarantine": {"dir": str(tmp_path / "q"), "release_via": f"127.0.0.1:{digest_sink.port}"},
        "web": {"users": [{"name": "jane", "password_hash": HASH, "addresses": [JANE]}]}}))
    store = QuarantineStore(tmp_path / "q")
    hers = store.put(make_message("hers"), make_meta(["jane+shop@example.com"], subject="hers"))
    janets = store.put(make_message("janet"), make_meta(["janet@example.com"], subject="janet"))
    listed = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "list", "--to", JANE])
    assert listed.exit_code == 0, listed.output
    assert hers in listed.output and janets not in listed.output
    sent = CliRunner().invoke(cli, ["--config", str(config), "quarantine", "digest"])
    assert sent.exit_code == 0, sent.output
    [mail] = digest_sink.wait_for(1)
    assert mail.recipients == (JANE,)
    assert hers in mail.message.get_content() and janets not in mail.message.get_content()
