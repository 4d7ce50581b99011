"""Keeping quarantined messages: byte-exact, crash-safe, with the facts a reviewer needs.

Each message is two files named by an unguessable id: `ID.json` (metadata) and `ID.eml` (the
message, byte for byte). Both are written under a temporary name, flushed to disk and renamed,
metadata first; a message exists once its `.eml` does. A crash at any point therefore leaves
either nothing visible or a complete message — and the milter removes recipients only after
`put` has returned.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")


class QuarantineError(Exception):
    """The store could not keep or find a message; the text says which and why."""


def new_id() -> str:
    return secrets.token_urlsafe(16)


def valid_id(message_id: str) -> bool:
    """Ids come from URLs and command lines: only our own shape is accepted (no path tricks)."""
    return bool(ID_PATTERN.match(message_id))


class QuarantineStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, message_id: str, suffix: str) -> Path:
        if not valid_id(message_id):
            raise QuarantineError(f"not a quarantine id: {message_id!r}")
        return self.directory / f"{message_id}{suffix}"

    def put(self, raw: bytes, meta: dict[str, Any]) -> str:
        """Store a message; returns its id once both files are safely on disk."""
        message_id = new_id()
        try:
            self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            self._write(self._path(message_id, ".json"),
                        json.dumps({**meta, "id": message_id}, ensure_ascii=False).encode())
            self._write(self._path(message_id, ".eml"), raw)
        except OSError as exc:
            raise QuarantineError(f"cannot store in {self.directory}: {exc.strerror}") from None
        return message_id

    def _write(self, path: Path, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-", delete=False) as tmp:
            try:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, path)

    def exists(self, message_id: str) -> bool:
        return valid_id(message_id) and self._path(message_id, ".eml").exists()

    def raw(self, message_id: str) -> bytes:
        try:
            return self._path(message_id, ".eml").read_bytes()
        except OSError:
            raise QuarantineError(f"no quarantined message {message_id}") from None

    def meta(self, message_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._path(message_id, ".json").read_text())
        except (OSError, ValueError):
            raise QuarantineError(f"no metadata for quarantined message {message_id}") from None

    def ids(self) -> list[str]:
        """Ids of complete messages; leftovers of a crash (no .eml) are not listed."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.eml") if valid_id(p.stem))
