"""Keeping quarantined messages: byte-exact, crash-safe, searchable, with their history.

`QuarantineStore` is what the milter, the commands and the web UI talk to; the backend decides
where bytes and records live: `LocalBackend` (files + SQLite, one host, the default) or
`RedisBackend` (one quarantine shared by several mail hosts). Either way `put` returns only once
the message is completely stored, and a message becomes visible all at once — the milter removes
recipients only after `put` has returned, so a failure here never loses mail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mailsift.config import REDIS_SCHEMES, QuarantineConfig
from mailsift.domains import NO_SUBADDRESSES, Subaddressing
from mailsift.quarantine.local import LocalBackend
from mailsift.quarantine.model import (
    Purged,
    QuarantineError,
    Query,
    UserLists,
    add_event,
    new_id,
    normalise,
    valid_id,
)
from mailsift.redis_connect import settings_for
from mailsift.secrets import REDIS_PASSWORD_ENV, SecretError, read_secret

__all__ = ["QuarantineError", "QuarantineStore", "open_quarantine", "valid_id"]


class Backend(Protocol):
    """The narrow storage interface; tests/quarantine/test_backend_contract.py runs it on each."""

    def add(self, message_id: str, raw: bytes, record: dict[str, Any]) -> None: ...
    def raw(self, message_id: str) -> bytes: ...
    def record(self, message_id: str) -> dict[str, Any]: ...
    def change(self, message_id: str,
               edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]: ...  # atomic: see `change`
    def delete(self, message_id: str) -> None: ...
    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]: ...
    def purge(self, before: datetime) -> Purged: ...
    def all_lists(self) -> dict[str, UserLists]: ...
    def set_listed(self, address: str, kind: str, entry: str, present: bool) -> None: ...
    def mark(self, name: str) -> str | None: ...
    def set_mark(self, name: str, value: str) -> None: ...
    @property
    def where(self) -> str: ...  # the index for messages: a file path, or the Redis without secrets


class QuarantineStore:
    def __init__(self, directory: str | Path, backend: Backend | None = None) -> None:
        self.directory = Path(directory)
        self.backend: Backend = backend or LocalBackend(self.directory)

    def put(self, raw: bytes, meta: dict[str, Any]) -> str:
        """Store a message; returns its id once it is completely stored and indexed."""
        message_id = new_id()
        self.backend.add(message_id, raw, {**normalise(raw, meta), "id": message_id})
        return message_id

    def exists(self, message_id: str) -> bool:
        try:
            return self.meta(message_id)["state"] != "deleted"
        except QuarantineError:
            return False

    def raw(self, message_id: str) -> bytes:
        return self.backend.raw(message_id)

    def meta(self, message_id: str) -> dict[str, Any]:
        return self.backend.record(message_id)

    def ids(self) -> list[str]:
        """Ids of every message held (complete and not deleted), oldest first."""
        records, _ = self.backend.search(Query(sort="time", descending=False, limit=None))
        return [r["id"] for r in records]

    def search(self, query: Query) -> tuple[list[dict[str, Any]], int]:
        return self.backend.search(query)

    def log(self, message_id: str, user: str, action: str, detail: str = "",
            state: str | None = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append to the message's history (and change its state and any `changes` fields);
        returns the new record."""
        def logged(record: dict[str, Any]) -> None:
            add_event(record, user, action, detail)
            if state is not None:
                record["state"] = state
            record.update(changes or {})

        return self.change(message_id, logged)

    def change(self, message_id: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Store the record as `edit` changes it, and return it. Atomic across processes: no
        other change of the record comes between the read `edit` is given and the write (the
        backend's transaction), so what another process changes at the same time (a learning's
        event, a release's record) is kept, and a choice made in `edit` (review.release's
        recipients) sees every change made before it. `edit` may run more than once (the
        Redis backend retries a change another client interrupted) and must change only the
        record it is given; if it raises, nothing is written."""
        return self.backend.change(message_id, edit)

    def delete(self, message_id: str, user: str) -> None:
        """Remove the message; its record and history stay until it expires.

        Recorded first, in one change that also refuses a message already deleted: two deletes
        at once (the web UI and the CLI) both passed a check read before either wrote, and the
        history said "deleted" twice. The bytes go after; if that fails, the message reads
        deleted and its bytes wait for the expiry, where the other order left a "held" message
        whose bytes were gone."""
        def deleted(record: dict[str, Any]) -> None:
            if record["state"] == "deleted":
                raise QuarantineError(f"message {message_id} was already deleted")
            add_event(record, user, "deleted", "")
            record["state"] = "deleted"

        self.change(message_id, deleted)
        self.backend.delete(message_id)

    def expire(self, before: datetime) -> Purged:
        return self.backend.purge(before)


def _password(config: QuarantineConfig) -> str | None:
    try:
        return read_secret(config.password_file, REDIS_PASSWORD_ENV, "Redis password")
    except SecretError as exc:
        raise QuarantineError(f"quarantine.password_file: {exc}") from None


def open_quarantine(config: QuarantineConfig, timeout: float | None = None,
                    subaddressing: Subaddressing = NO_SUBADDRESSES) -> QuarantineStore:
    """The store the configuration names: local files and SQLite, or a shared Redis, waited
    for up to `timeout` seconds a call (None: the Redis backend's own, for large messages).
    `subaddressing` (Config.subaddressing): by which a search finds mail to a subaddress
    (jane+shop@) as its owner's; what reads no message by recipient may leave it out."""
    if config.index.startswith(REDIS_SCHEMES):
        from mailsift.quarantine.redis_backend import TIMEOUT_S, RedisBackend

        settings = settings_for(config, config.index, _password(config))
        backend = RedisBackend.from_settings(settings, timeout=TIMEOUT_S if timeout is None else timeout,
                                             subaddressing=subaddressing)
        return QuarantineStore(config.dir, backend)
    return QuarantineStore(config.dir, LocalBackend(config.dir, subaddressing=subaddressing))


def unmade_folder(config: QuarantineConfig) -> str | None:
    """What to say of a local quarantine whose folder does not exist, None when it does (or the
    index is a Redis). Nothing was ever held there, and nothing that only looks makes it
    (`LocalBackend._unmade`): the milter makes it at its start, so the expire and digest timers
    of a new install meet one, and one missing after that is most likely a mistyped
    quarantine.dir, or a config the milter does not run with."""
    if config.index.startswith(REDIS_SCHEMES) or Path(config.dir).exists():
        return None
    return (f"no quarantine at {config.dir} yet (quarantine.dir): the milter makes it at its "
            "start; if the milter runs with this config, check the path")
