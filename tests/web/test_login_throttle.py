"""Login throttling: per name and address, and per address over all names (password spraying)."""

from __future__ import annotations

from starlette.testclient import TestClient

from mailsift.web.auth import LoginThrottle
from tests.web.conftest import PASSWORDS, csrf_of

ADDRESS, OTHER = "127.0.0.66", "127.0.0.77"


class Clock:
    """The throttle's monotonic clock, moved by the test: its waits last up to an hour."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(attempts: int = 5) -> tuple[LoginThrottle, Clock]:
    clock = Clock()
    made = LoginThrottle(attempts, 30.0)
    made.clock = clock
    return made, clock


def spray(limiter: LoginThrottle, count: int, name: str = "user") -> None:
    """`count` wrong passwords from ADDRESS, each for another name: one password tried
    against many logins, which no per-name count sees."""
    for n in range(count):
        limiter.failed(f"{name}{n}", ADDRESS)


def test_one_password_tried_against_many_names_slows_the_address(client: TestClient) -> None:
    """Failures were counted per name and address only: one address trying one password
    against every name was never slowed, however many names it tried."""
    token = csrf_of(client.get("/login").text)
    for n in range(20):  # four times login_attempts (5 in the fixture's config)
        wrong = client.post("/login", data={"csrf": token, "name": f"user{n}", "password": "Summer2024"})
        assert wrong.status_code == 401, n
    slowed = client.post("/login", data={"csrf": token, "name": "jane", "password": PASSWORDS["jane"]})
    assert slowed.status_code == 429
    assert "Too many failed logins" in slowed.text


def test_the_address_limit_counts_failures_over_all_names_and_leaves_other_addresses_alone() -> None:
    limiter, _ = throttle(attempts=2)
    spray(limiter, 7)
    assert limiter.wait("jane", ADDRESS) == 0
    limiter.failed("user7", ADDRESS)
    assert limiter.wait("jane", ADDRESS) == 30.0
    assert limiter.wait("jane", OTHER) == 0


def test_a_name_is_still_slowed_after_its_own_failures_alone() -> None:
    limiter, _ = throttle(attempts=2)
    limiter.failed("jane", ADDRESS)
    limiter.failed("Jane", ADDRESS)
    assert limiter.wait("jane", ADDRESS) == 30.0
    assert limiter.wait("bob", ADDRESS) == 0
    limiter.failed("jane", OTHER)
    assert limiter.wait("jane", OTHER) == 0


def test_a_success_does_not_clear_the_addresss_count() -> None:
    """A customer with a login of their own could otherwise spray, log in, and spray again."""
    limiter, _ = throttle(attempts=1)
    spray(limiter, 3)
    limiter.succeeded("mallory", ADDRESS)
    limiter.failed("user3", ADDRESS)
    assert limiter.wait("mallory", ADDRESS) == 30.0


def test_an_addresss_failures_are_forgotten_after_an_hour_of_quiet() -> None:
    """An office behind one NAT must not be slowed for typos spread over weeks."""
    limiter, clock = throttle(attempts=1)
    spray(limiter, 3)
    clock.now += LoginThrottle.FORGET - 1
    limiter.failed("user3", ADDRESS)  # within the hour: the fourth failure, which slows
    assert limiter.wait("someone", ADDRESS) == 30.0
    clock.now += 30 + LoginThrottle.FORGET  # the wait, then an hour without a failure
    assert limiter.wait("someone", ADDRESS) == 0
    spray(limiter, 3, "other")
    assert limiter.wait("someone", ADDRESS) == 0


def test_an_ipv6_client_counts_by_its_64_block() -> None:
    """A host with a /64 (every IPv6 subscriber or server) could take a fresh allowance for
    each guess by changing the last bits of its address."""
    limiter, _ = throttle(attempts=1)
    for n in range(4):
        limiter.failed(f"user{n}", f"2001:db8:1:2::{n + 1:x}")
    assert limiter.wait("jane", "2001:db8:1:2:ffff::9") == 30.0
    assert limiter.wait("jane", "2001:db8:1:3::1") == 0
    limiter.failed("jane", "::ffff:192.0.2.7")  # IPv4 through a dual-stack socket
    assert limiter.wait("jane", "192.0.2.7") == 30.0


def test_a_names_failures_are_forgotten_after_an_hour_of_quiet() -> None:
    """Four typos last month and one today are not five failures in a row."""
    limiter, clock = throttle(attempts=2)
    limiter.failed("jane", ADDRESS)
    clock.now += LoginThrottle.FORGET
    limiter.failed("jane", ADDRESS)
    assert limiter.wait("jane", ADDRESS) == 0
    limiter.failed("jane", ADDRESS)
    assert limiter.wait("jane", ADDRESS) == 30.0


def test_guesses_from_ever_new_addresses_keep_the_counts_bounded() -> None:
    """The least recently failing counts go first; the latest guesser stays counted."""
    limiter, clock = throttle(attempts=1)
    limiter.MAX_COUNTS = 50
    for n in range(1000):
        clock.now += 1
        limiter.failed("admin", f"198.51.{n // 250}.{n % 250}")
    assert len(limiter.names) == len(limiter.clients) == 50
    assert limiter.wait("admin", "198.51.3.249") > 0
    assert limiter.wait("admin", "198.51.0.0") == 0
