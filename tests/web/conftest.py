"""The review UI in-process (Starlette's TestClient, plain http: no Secure cookies) with three users."""

from __future__ import annotations

import html
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from mailsift.config import Config, parse_config
from mailsift.quarantine.store import QuarantineStore, open_quarantine
from mailsift.web.app import create_app
from mailsift.web.auth import hash_password
from tests.support.sink import SmtpSink

PASSWORDS = {"admin": "admin-pass-123", "jane": "jane-pass-123", "bob": "bob-pass-123"}
ADDRESSES = {"admin": [], "jane": ["jane@example.org"], "bob": ["bob@example.org"]}


@pytest.fixture(scope="session")
def password_hashes() -> dict[str, str]:
    return {name: hash_password(password) for name, password in PASSWORDS.items()}


def web_config(directory: Path, hashes: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """A config dict: quarantine and Bayes under `directory`, three users, plain-http cookies."""
    users = [{"name": name, "password_hash": hashes[name],
              "role": "admin" if name == "admin" else "user", "addresses": ADDRESSES[name]}
             for name in PASSWORDS]
    return {
        "quarantine": {"dir": str(directory / "quarantine"), **overrides.get("quarantine", {})},
        "bayes": {"store": f"sqlite:///{directory / 'bayes.sqlite'}"},
        "rules": {"local_cf": str(directory / "none.cf")},
        "web": {"secure_cookies": False, "users": users, "login_attempts": 5, "login_delay": 30.0,
                **overrides.get("web", {})},
    }


@pytest.fixture
def config(tmp_path: Path, password_hashes: dict[str, str]) -> Config:
    return parse_config(web_config(tmp_path, password_hashes), "test")


@pytest.fixture
def store(config: Config) -> QuarantineStore:
    return open_quarantine(config.quarantine)


@pytest.fixture
def client(config: Config, store: QuarantineStore) -> Iterator[TestClient]:
    with TestClient(create_app(config, store, "test-secret-" + "x" * 20),
                    follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def flash_of(page: str) -> str:
    """The message the page flashes after an action, as its user reads it."""
    found = re.search(r'<p class="flash" role="status">([^<]*)</p>', page)
    assert found, "page flashes nothing"
    return html.unescape(found.group(1))


def log_in(client: TestClient, name: str, password: str | None = None) -> str:
    """Log in and return the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf": token, "name": name,
                                           "password": password or PASSWORDS[name]})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """An SMTP server that keeps what released mail reaches it, fresh for each test."""
    with SmtpSink() as server:
        yield server


def wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Return once `mailsift web` on loopback `port` answers; fail with its log (`log`) at once
    if it exited (a config refused), as the tests that start it as a process need."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mailsift web exited with {process.returncode}: {log.read_text()}")
        try:
            httpx2.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.05)
    pytest.fail(f"mailsift web did not answer within 30 s: {log.read_text()}")
