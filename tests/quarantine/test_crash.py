"""A writer killed between writing and renaming leaves nothing visible, and no half message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailsift.quarantine.model import Query
from mailsift.quarantine.store import QuarantineStore

# Runs QuarantineStore.put in a child whose os.replace SIGKILLs the process just before the
# message file would be renamed into place: the worst moment for a crash.
WRITER = """
import os, signal, sys
real_replace = os.replace
def crash_before_message_rename(src, dst):
    if str(dst).endswith(".eml"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = crash_before_message_rename
from mailsift.quarantine.store import QuarantineStore
from tests.quarantine.conftest import make_message, make_meta
QuarantineStore(sys.argv[1]).put(make_message(body="x" * 100000), make_meta())
"""


def test_writer_killed_before_rename_leaves_no_visible_message(tmp_path: Path) -> None:
    directory = tmp_path / "q"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", WRITER, str(directory)], cwd=root, timeout=60)
    assert done.returncode == -9  # it really died mid-write
    store = QuarantineStore(directory)
    assert store.ids() == [] and store.search(Query())[1] == 0
    assert list(directory.glob("*.eml")) == []
    assert list(directory.glob(".tmp-*")), "the unfinished message file is where the crash left it"

    old = time.time() - 7200
    for path in directory.iterdir():
        os.utime(path, (old, old))
    store.expire(datetime.now(UTC) - timedelta(days=30))  # the daily timer sweeps the leftovers
    assert [p.name for p in directory.iterdir() if not p.name.startswith("index.sqlite")] == []
