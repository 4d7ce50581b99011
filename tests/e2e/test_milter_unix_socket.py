"""The milter on a unix socket, the recommended transport on one host (no TCP Nagle stalls)."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Mta, base_config
from tests.e2e.messages import make_message
from tests.support.milter_process import MilterProcess
from tests.support.postfix import PostfixInstance

BOB = "bob@example.com"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """Outside pytest's 0700 tree: Postfix's smtpd (user postfix) must reach the socket."""
    directory = Path(tempfile.mkdtemp(prefix="mailsift-unix-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_milter_serves_postfix_over_a_unix_socket_with_the_configured_mode(
        mta: Mta, postfix: PostfixInstance, socket_dir: Path) -> None:
    path = socket_dir / "milter.sock"
    config = base_config(socket_dir) | {"milter": {"socket_mode": "0666", "workers": 1}}
    with MilterProcess(config, socket_dir, unix_socket=path) as milter:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        postfix.set_milter(milter.postfix_address, "tempfail")
        raw, message_id = make_message()
        sent = mta.send(raw, BOB)
        assert sent.accepted, sent.reply
        assert mta.delivered(message_id).header("X-Spam-Flag") == "NO"
