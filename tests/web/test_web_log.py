"""What `mailsift web` itself (uvicorn) writes to its log: each line once, in mailsift's format."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import dataclass

import httpx2
import pytest

from tests.support.milter_process import mailsift_command, to_toml
from tests.support.ports import free_port
from tests.web.conftest import csrf_of, wait_until_serving, web_config

HOST = "127.0.0.1"


@dataclass(frozen=True)
class WebLog:
    stdout: str
    lines: list[str]  # stderr's


@pytest.fixture(scope="module")
def web_log(tmp_path_factory: pytest.TempPathFactory, password_hashes: dict[str, str]) -> WebLog:
    """What one `mailsift web` wrote while it started, served a login page and refused a wrong
    password, and stopped: one process for this file's tests, as each costs a second."""
    tmp_path = tmp_path_factory.mktemp("web_log")
    port = free_port()
    path = tmp_path / "mailsift.toml"
    path.write_text(to_toml(web_config(tmp_path, password_hashes, web={"listen": f"{HOST}:{port}"})))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "MAILSIFT_WEB_SECRET": "web-log-test-secret-0123456789"}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([*mailsift_command(), "--config", str(path), "web"], env=env,
                                   stdout=stdout, stderr=stderr)
    try:
        wait_until_serving(process, port, err)
        with httpx2.Client(base_url=f"http://{HOST}:{port}") as client:
            page = client.get("/login")
            client.post("/login", data={"csrf": csrf_of(page.text), "name": "jane",
                                        "password": "wrong-password"})
    finally:
        process.terminate()
        process.wait(timeout=15)
    return WebLog(out.read_text(), err.read_text().splitlines())


def test_each_line_of_the_web_log_is_written_once_in_mailsifts_format(web_log: WebLog) -> None:
    """uvicorn wrote its own lines ("INFO:     Started server process [..]") to stderr and its
    request lines to stdout, in its format beside ours, and whether they also reached our
    handler (each line twice) was up to its logging config. Every line now goes through the one
    handler `mailsift` sets up, once, on stderr."""
    lines = web_log.lines
    assert web_log.stdout == ""
    assert [line for line in lines if not line.startswith("mailsift: ")] == []
    assert [line for line, count in Counter(lines).items() if count > 1] == []
    assert sum("failed login of 'jane'" in line for line in lines) == 1
    assert sum('"POST /login HTTP/1.1" 401' in line for line in lines) == 1


def test_uvicorns_start_and_stop_are_not_logged_as_errors(web_log: WebLog) -> None:
    """uvicorn's own lines came under its logger's name, 'mailsift: INFO uvicorn.error: Started
    server process [..]': an admin grepping the journal for "error" took every start and stop
    for a failure. They come as 'uvicorn' now; the request lines stay 'uvicorn.access'."""
    assert [line for line in web_log.lines if "error" in line.lower()] == []
    assert [line.partition(" [")[0] for line in web_log.lines if "server process" in line] == [
        "mailsift: INFO uvicorn: Started server process",
        "mailsift: INFO uvicorn: Finished server process"]
    assert sum(line.startswith("mailsift: INFO uvicorn.access: ") and '"POST /login HTTP/1.1" 401'
               in line for line in web_log.lines) == 1
