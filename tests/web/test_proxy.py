"""The review UI behind a TLS reverse proxy: `mailsift web` itself (uvicorn), over real HTTP.

The proxy is played by a client connecting from a loopback address and writing the
X-Forwarded-For and X-Forwarded-Proto headers a proxy would; the rest of 127.0.0.0/8 stands in for
the clients and for hosts that are no proxy of ours.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from mailsift.config import Config
from mailsift.quarantine.store import QuarantineStore
from mailsift.web.app import create_app
from tests.support.milter_process import mailsift_command, to_toml
from tests.support.ports import free_port
from tests.web.conftest import PASSWORDS, csrf_of, wait_until_serving, web_config

PROXY = "127.0.0.1"  # where the proxy connects from
ELSEWHERE = "127.0.0.2"  # a host that is no proxy of ours
ATTACKER, JANE = "127.0.0.66", "127.0.0.77"  # clients as the proxy names them
HSTS = "max-age=31536000"


@dataclass
class Ui:
    url: str
    log: Path

    def client(self, source: str = PROXY, **headers: str) -> httpx2.Client:
        """A client connecting from `source`, sending `headers` with every request."""
        return httpx2.Client(base_url=self.url, headers=headers, follow_redirects=False,
                             transport=httpx2.HTTPTransport(local_address=source))

    def logged(self) -> str:
        return self.log.read_text()


@pytest.fixture
def start_ui(tmp_path: Path, password_hashes: dict[str, str]) -> Iterator[Callable[..., Ui]]:
    """Starts `mailsift web` with these [web] keys, listening on loopback; stops it afterwards."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**web: Any) -> Ui:
        port = free_port()
        config = web_config(tmp_path, password_hashes,
                            web={"listen": f"{PROXY}:{port}", "login_attempts": 2, **web})
        path = tmp_path / "mailsift.toml"
        path.write_text(to_toml(config))
        log = tmp_path / "web.log"
        env = {**os.environ, "MAILSIFT_WEB_SECRET": "proxy-test-secret-0123456789"}
        with log.open("wb") as stderr:
            processes.append(subprocess.Popen([*mailsift_command(), "--config", str(path), "web"],
                                              env=env, stdout=subprocess.DEVNULL, stderr=stderr))
        wait_until_serving(processes[-1], port, log)
        return Ui(f"http://{PROXY}:{port}", log)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


def login(client: httpx2.Client, name: str, password: str | None = None) -> int:
    """Post the login form as a browser would; returns the status (303 in, 401 wrong, 429 slowed)."""
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": name,
                                           "password": password or PASSWORDS[name]})
    return response.status_code


def test_behind_a_trusted_proxy_one_clients_failed_logins_do_not_lock_out_the_others(
        start_ui: Callable[..., Ui]) -> None:
    """uvicorn ran with proxy_headers=False: behind a proxy every login came from the proxy's
    address, so an attacker's wrong passwords for jane slowed jane's own logins too, and the
    log named 127.0.0.1 for everyone."""
    ui = start_ui(trusted_proxies=[PROXY])
    with ui.client(**{"X-Forwarded-For": ATTACKER}) as attacker:
        assert [login(attacker, "jane", "guess") for _ in range(2)] == [401, 401]
        assert login(attacker, "jane") == 429
    with ui.client(**{"X-Forwarded-For": JANE}) as jane:
        assert login(jane, "jane") == 303
    logged = ui.logged()
    assert f"failed login of 'jane' from {ATTACKER}" in logged
    assert f"login of 'jane' from {ATTACKER} refused: too many failures" in logged
    assert f"jane logged in from {JANE}" in logged


def test_forwarded_headers_count_only_from_a_listed_proxy(start_ui: Callable[..., Ui]) -> None:
    """Anyone can write X-Forwarded-For: believed from every client, it would let an attacker
    name a new address with each guess and never be slowed."""
    ui = start_ui(trusted_proxies=[f"{ELSEWHERE}/32", "::1"])
    for n in range(3):
        with ui.client(PROXY, **{"X-Forwarded-For": f"127.0.1.{n}"}) as forger:
            assert login(forger, "jane", "guess" if n < 2 else None) == (401 if n < 2 else 429)
    with ui.client(ELSEWHERE, **{"X-Forwarded-For": JANE}) as proxy:
        assert login(proxy, "jane") == 303
    assert f"failed login of 'jane' from {PROXY}" in ui.logged()
    assert f"jane logged in from {JANE}" in ui.logged()


def test_no_proxy_is_believed_by_default(start_ui: Callable[..., Ui]) -> None:
    ui = start_ui()
    with ui.client(**{"X-Forwarded-For": ATTACKER, "X-Forwarded-Proto": "https"}) as forger:
        page = forger.get("/login")
        assert "strict-transport-security" not in page.headers
        assert login(forger, "jane", "guess") == 401
    assert f"failed login of 'jane' from {PROXY}" in ui.logged()


def _cookie_flags(response: httpx2.Response) -> set[str]:
    """The attributes of the session cookie set by `response`, lowercased (secure, httponly...)."""
    cookie = response.headers["set-cookie"]
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_https_at_a_trusted_proxy_gets_hsts_and_a_secure_cookie(start_ui: Callable[..., Ui]) -> None:
    """Over https through the proxy the UI sent no Strict-Transport-Security, and with
    secure_cookies = false a session cookie the browser would also send over plain http."""
    ui = start_ui(trusted_proxies=[PROXY], secure_cookies=False)
    with ui.client(**{"X-Forwarded-Proto": "https"}) as browser:
        page = browser.get("/login")
        assert page.headers["strict-transport-security"] == HSTS
        assert {"secure", "httponly", "samesite"} <= _cookie_flags(page)
        assert browser.get("/static/style.css").headers["strict-transport-security"] == HSTS
    with ui.client(**{"X-Forwarded-Proto": "http"}) as browser:
        page = browser.get("/login")
        assert "strict-transport-security" not in page.headers
        assert "secure" not in _cookie_flags(page)
    with ui.client(ELSEWHERE, **{"X-Forwarded-Proto": "https"}) as forger:
        assert "strict-transport-security" not in forger.get("/login").headers


def test_a_request_over_https_gets_hsts_and_a_secure_cookie_whatever_secure_cookies_says(
        config: Config, store: QuarantineStore) -> None:
    """The app itself, reached over https (the scheme uvicorn reports): secure_cookies = false
    made its cookie plain there too."""
    assert not config.web.secure_cookies
    app = create_app(config, store, "s" * 32)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as https:
        page = https.get("/login")
        assert page.headers["strict-transport-security"] == HSTS
        assert re.search(r";\s*secure", page.headers["set-cookie"], re.IGNORECASE)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as plain:
        page = plain.get("/login")
        assert "strict-transport-security" not in page.headers
        assert not re.search(r";\s*secure", page.headers["set-cookie"], re.IGNORECASE)
