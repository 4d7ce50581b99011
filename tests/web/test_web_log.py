"""What `mailsift web` itself (uvicorn) writes to its log: each line once, in mailsift's format."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import httpx2

from tests.support.milter_process import mailsift_command, to_toml
from tests.support.ports import free_port
from tests.web.conftest import csrf_of, web_config
from tests.web.test_proxy import _wait_until_serving

HOST = "127.0.0.1"


def test_each_line_of_the_web_log_is_written_once_in_mailsifts_format(
        tmp_path: Path, password_hashes: dict[str, str]) -> None:
    """uvicorn wrote its own lines ("INFO:     Started server process [..]") to stderr and its
    request lines to stdout, in its format beside ours, and whether they also reached our
    handler (each line twice) was up to its logging config. Every line now goes through the one
    handler `mailsift` sets up, once, on stderr."""
    port = free_port()
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml(web_config(tmp_path, password_hashes, web={"listen": f"{HOST}:{port}"})))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "MAILSIFT_WEB_SECRET": "web-log-test-secret-0123456789"}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([*mailsift_command(), "--config", str(path), "web"], env=env,
                                   stdout=stdout, stderr=stderr)
    try:
        _wait_until_serving(process, port, err)
        with httpx2.Client(base_url=f"http://{HOST}:{port}") as client:
            page = client.get("/login")
            client.post("/login", data={"csrf": csrf_of(page.text), "name": "jane",
                                        "password": "wrong-password"})
    finally:
        process.terminate()
        process.wait(timeout=15)
    lines = err.read_text().splitlines()
    assert out.read_text() == ""
    assert [line for line in lines if not line.startswith("mailsift: ")] == []
    assert [line for line, count in Counter(lines).items() if count > 1] == []
    assert sum("failed login of 'jane'" in line for line in lines) == 1
    assert sum('"POST /login HTTP/1.1" 401' in line for line in lines) == 1
