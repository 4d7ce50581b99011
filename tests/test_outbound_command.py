"""`mailsift outbound list` and `lift`: who the shared pause store holds paused, and lifting one
pause early, where an admin had to restart the milter or delete a Redis key by hand.

Senders are made paused through the milter's own code path (SenderHold.spam on the config the
command reads), in real redis-servers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailsift.config import load_config
from mailsift.milter.sender_hold import sender_hold
from tests.support.cli import run_mailsift
from tests.support.milter_process import to_toml
from tests.support.redis_server import TEST_PASSWORD, RedisServer

ALICE, BOB, CLIENT = "SASL login alice", "SASL login bob", "client 192.0.2.7"
WINDOW_S = 3600


def write(tmp_path: Path, outbound: dict[str, Any], name: str = "mailsift.toml") -> Path:
    path = tmp_path / name
    path.write_text(to_toml({"outbound": {"pause_after": 2, **outbound}}))
    return path


def spam(config: Path, sender: str, times: int) -> None:
    """`times` outbound messages of `sender` stopped as spam, counted as a milter host counts."""
    hold = sender_hold(load_config(str(config)).outbound)
    for _ in range(times):
        hold.spam(sender)


def held(config: Path, sender: str) -> bool:
    """Whether a milter host starting now would defer the sender's mail."""
    return sender_hold(load_config(str(config)).outbound).held(sender)


def outbound(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command as an admin runs it; its system log is a socket no test listens on unless
    `env` names one (MAILSIFT_SYSLOG), as this machine has no /dev/log of its own."""
    return run_mailsift(["--config", str(config), "outbound", *args],
                        env={"MAILSIFT_SYSLOG": str(config.parent / "no-syslog"), **(env or {})})


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[socket.socket]:
    """A system log socket as journald and rsyslog bind /dev/log: a Unix datagram socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "log"))
        sock.settimeout(10)
        yield sock


def logged(syslog: socket.socket) -> str:
    return syslog.recv(65536).decode()


@pytest.fixture
def empty_redis(redis_server: RedisServer) -> RedisServer:
    with redis_server.client() as client:
        client.flushall()
    return redis_server


def test_list_shows_every_counted_sender_paused_first_and_when_each_pause_ends(tmp_path: Path) -> None:
    """On a Redis that wants a password and has KEYS disabled, as some providers do: the
    senders are found by SCAN."""
    server = RedisServer(tmp_path / "redis", "--rename-command", "KEYS", "", password=TEST_PASSWORD)
    secret = tmp_path / "redis-password"
    secret.write_text(TEST_PASSWORD)
    try:
        config = write(tmp_path, {"pause_store": server.url, "password_file": str(secret)})
        other_site = write(tmp_path, {"pause_store": server.url, "password_file": str(secret),
                                      "pause_key_prefix": "other:"}, "other.toml")
        spam(config, ALICE, 1)
        started = time.time()
        spam(config, CLIENT, 2)
        ended = time.time()
        spam(other_site, BOB, 2)
        listed = outbound(config, "list")
    finally:
        server.stop()
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stderr
    paused, counting = listed.stdout.splitlines()
    assert counting == "not paused                               1 of 2     SASL login alice"
    assert paused.startswith("paused until ") and paused.endswith(" UTC     2 of 2     client 192.0.2.7")
    until = datetime.strptime(paused[13:32], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    assert int(started) + WINDOW_S <= until <= ended + WINDOW_S


class CountingRelay:
    """A TCP relay on loopback between the command and a real redis-server that counts the
    command's writes: each request it sends and waits for is one at least, a pipeline a few."""

    def __init__(self, server: RedisServer) -> None:
        self.target = ("127.0.0.1", server.port)
        self.writes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        """Until either side ends; the other direction's thread then finds both sockets closed
        (an OSError that ends it too, rather than surfacing as an unhandled thread error)."""
        with source, sink, contextlib.suppress(OSError):
            while data := source.recv(65536):
                self.writes += counted
                sink.sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_list_of_thousands_of_senders_takes_a_few_round_trips(
        tmp_path: Path, empty_redis: RedisServer) -> None:
    """A provider counts thousands of logins: one script call each was 10,000 round trips, 1.6 s
    on loopback and ten times that to a Redis across the LAN."""
    hold = sender_hold(load_config(str(write(tmp_path, {"pause_store": empty_redis.url}))).outbound)
    senders = [f"SASL login user{n}" for n in range(2500)]
    for sender in senders:
        hold.spam(sender)
    relay = CountingRelay(empty_redis)
    try:
        listed = outbound(write(tmp_path, {"pause_store": f"redis://127.0.0.1:{relay.port}/0"},
                                "relayed.toml"), "list")
    finally:
        relay.close()
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("     ")[-1] for line in listed.stdout.splitlines()) == sorted(senders)
    assert relay.writes < 100, relay.writes


def test_list_with_nobody_counted_says_so(tmp_path: Path, empty_redis: RedisServer) -> None:
    listed = outbound(write(tmp_path, {"pause_store": empty_redis.url, "pause_minutes": 30}), "list")
    assert (listed.returncode, listed.stdout, listed.stderr) == (
        0, "No sender has spam counted in the last 30 minutes\n", "")


def test_lift_lets_a_paused_login_send_again_on_every_host_and_logs_who_lifted_it_in_the_system_log(
        tmp_path: Path, empty_redis: RedisServer, syslog: socket.socket) -> None:
    """In the system log beside the milter's "paused" line (identifier mailsift, mail.info),
    where a colleague finds who let a spammer send again; the line was on the lifter's terminal
    only."""
    config = write(tmp_path, {"pause_store": empty_redis.url})
    spam(config, ALICE, 2)
    spam(config, CLIENT, 2)
    assert held(config, ALICE)
    lifted = outbound(config, "lift", "alice", env={"MAILSIFT_SYSLOG": syslog.getsockname()})
    assert (lifted.returncode, lifted.stderr) == (0, "")  # as Postfix's log names the login
    assert lifted.stdout.startswith(f"Lifted the pause of {ALICE} (paused until ")
    assert lifted.stdout.endswith(" UTC, 2 of 2 messages scored as spam); its mail is accepted again\n")
    line = logged(syslog)
    assert line.startswith("<22>mailsift[")  # facility mail (2 x 8) + info (6)
    assert line.split("]: ", 1)[1].startswith(
        f"outbound spam count of {ALICE} cleared by cli:{pwd.getpwuid(os.getuid()).pw_name}: "
        "2 of 2, paused until ")
    assert not held(config, ALICE)
    assert held(config, CLIENT)  # only the one named
    assert outbound(config, "list").stdout.endswith(f"2 of 2     {CLIENT}\n")


@pytest.mark.skipif(os.getuid() != 0, reason="sudo leaves SUDO_USER only for root")
def test_a_lift_through_sudo_names_who_ran_sudo(tmp_path: Path, empty_redis: RedisServer,
                                                syslog: socket.socket) -> None:
    """Admins sharing a host lift as root: "cli:root" alone told nobody who it was."""
    config = write(tmp_path, {"pause_store": empty_redis.url})
    spam(config, ALICE, 1)
    outbound(config, "lift", "alice", env={"MAILSIFT_SYSLOG": syslog.getsockname(),
                                           "SUDO_USER": "carol", "USER": "someone-else"})
    assert f"{ALICE} cleared by cli:root (sudo by carol): 1 of 2, not paused" in logged(syslog)


def test_a_lift_the_system_log_cannot_take_is_on_standard_error_and_still_done(
        tmp_path: Path, empty_redis: RedisServer) -> None:
    config = write(tmp_path, {"pause_store": empty_redis.url})
    spam(config, ALICE, 2)
    lifted = outbound(config, "lift", "alice")
    assert lifted.returncode == 0
    text, warning = lifted.stderr.splitlines()
    assert text.startswith(f"mailsift: outbound spam count of {ALICE} cleared by cli:")
    assert warning == (f"mailsift: warning: the line above is not in the system log: "
                       f"{tmp_path / 'no-syslog'}: No such file or directory "
                       "($MAILSIFT_SYSLOG names another socket)")
    assert not held(config, ALICE)


@pytest.mark.parametrize(("counted", "named"), [
    (BOB, ["SASL", "login", "bob"]),  # as `outbound list` writes it, unquoted
    # an IPv6 client is counted by its /64 (outbound.pause_ipv6_prefix): an address in it, written
    # as Postfix's log or any other way, or the network as the milter's log names it, lifts that
    ("client 2001:db8::/64", ["2001:DB8:0::7"]),
    ("client 2001:db8::/64", ["2001:db8::/64"]),
    ("client 2001:db8::/64", ["client 2001:db8::7"]),  # as the milter's log names a client
    ("client 2001:db8::/64", ["client", "2001:db8:0:0:ffff::9"]),  # unquoted, another address in it
])
def test_lift_of_a_sender_counted_below_the_limit_clears_its_count(
        tmp_path: Path, empty_redis: RedisServer, counted: str, named: list[str]) -> None:
    config = write(tmp_path, {"pause_store": empty_redis.url})
    spam(config, counted, 1)
    lifted = outbound(config, "lift", *named)
    assert (lifted.returncode, lifted.stdout) == (
        0, f"{counted} was not paused; cleared its count of 1 of 2\n")
    spam(config, counted, 1)
    assert not held(config, counted)


def test_lifting_a_sender_with_nothing_counted_is_one_line_and_fails(
        tmp_path: Path, empty_redis: RedisServer) -> None:
    config = write(tmp_path, {"pause_store": empty_redis.url})
    spam(config, ALICE, 2)
    lifted = outbound(config, "lift", "carol")
    assert (lifted.returncode, lifted.stdout, lifted.stderr) == (
        2, "", "mailsift: outbound lift: SASL login carol: no spam counted in the last 60 minutes, "
        "so no pause to lift (`mailsift outbound list` shows who has)\n")
    assert held(config, ALICE)


@pytest.mark.parametrize("command", [["list"], ["lift", "alice"]])
def test_without_a_pause_store_the_commands_say_how_to_lift_and_fail(tmp_path: Path,
                                                                     command: list[str]) -> None:
    """The counts are in each milter process's memory: nothing here can see or clear them."""
    done = outbound(write(tmp_path, {}), *command)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"mailsift: outbound {command[0]}: no outbound.pause_store: each milter "
                           "process counts senders' spam in its own memory, out of this command's "
                           "reach; restart the milter to lift a pause, or set outbound.pause_store "
                           "to share the counts in Redis\n")


@pytest.mark.parametrize("command", [["list"], ["lift", "alice"]])
@pytest.mark.parametrize("trouble", ["down", "wrong password"])
def test_a_redis_that_fails_is_one_line_naming_it_without_the_password(
        tmp_path: Path, command: list[str], trouble: str) -> None:
    server = RedisServer(tmp_path / "redis", password=TEST_PASSWORD)
    secret = tmp_path / "redis-password"
    secret.write_text(TEST_PASSWORD if trouble == "down" else "Wr0ng-" + TEST_PASSWORD)
    if trouble == "down":
        server.stop()
    try:
        done = outbound(write(tmp_path, {"pause_store": server.url, "password_file": str(secret)}),
                        *command)
    finally:
        server.stop()
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    error = "ConnectionError" if trouble == "down" else "AuthenticationError"
    assert done.stderr.startswith(
        f"mailsift: outbound {command[0]}: redis at 127.0.0.1:{server.port}: {error}")
    assert TEST_PASSWORD not in done.stderr


def test_list_and_lift_over_tls_with_the_sites_ca(tmp_path: Path, redis_tls_server: RedisServer) -> None:
    """The [outbound] Redis keys reach the command as they reach the milter."""
    assert redis_tls_server.tls is not None
    config = write(tmp_path, {"pause_store": f"rediss://127.0.0.1:{redis_tls_server.port}/0",
                              "pause_key_prefix": f"test:{tmp_path.name}:",
                              "tls_ca_file": str(redis_tls_server.tls / "ca.crt")})
    spam(config, ALICE, 2)
    listed = outbound(config, "list")
    assert listed.stdout.startswith("paused until ") and listed.stdout.endswith(f"2 of 2     {ALICE}\n"), \
        listed.stderr
    lifted = outbound(config, "lift", ALICE)
    assert lifted.stdout.startswith(f"Lifted the pause of {ALICE} "), lifted.stderr
    assert not held(config, ALICE)


def test_list_and_lift_in_a_redis_cluster(tmp_path: Path,
                                          redis_cluster_seeds: list[tuple[str, int]]) -> None:
    config = write(tmp_path, {"pause_store": "redis://",
                              "cluster_nodes": [f"{host}:{port}" for host, port in redis_cluster_seeds]})
    spam(config, ALICE, 2)
    spam(config, BOB, 1)
    listed = outbound(config, "list")
    assert listed.returncode == 0, listed.stderr
    paused, counting = listed.stdout.splitlines()
    assert paused.startswith("paused until ") and paused.endswith(f"2 of 2     {ALICE}")
    assert counting == f"{'not paused':<36}     1 of 2     {BOB}"
    lifted = outbound(config, "lift", ALICE)
    assert lifted.returncode == 0, lifted.stderr
    assert not held(config, ALICE)
    assert outbound(config, "list").stdout == f"{'not paused':<36}     1 of 2     {BOB}\n"
