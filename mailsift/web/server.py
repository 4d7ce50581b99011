"""Starting the review UI: refuse without an admin, find the session secret, serve with uvicorn.

There is no default password and no default secret: a UI that could start unprotected would be
started unprotected. The session secret comes from a file or the environment — never from the
command line, where every user of the machine can read it in the process list.
"""

from __future__ import annotations

import logging
import secrets
import socket

from mailsift.config import Config, split_host_port
from mailsift.secrets import SecretError, read_secret

log = logging.getLogger("mailsift.web")

SECRET_ENV = "MAILSIFT_WEB_SECRET"
MIN_SECRET = 16


class _UvicornName(logging.Filter):
    """uvicorn logs its start, stop and errors as "uvicorn.error", so through mailsift's handler
    every start read 'mailsift: INFO uvicorn.error: Started server process [..]', and an admin
    grepping the journal for "error" took each start for a failure. Its lines are named
    "uvicorn" instead; a real error still says ERROR, and "uvicorn.access", a logger of its own,
    keeps its name."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = "uvicorn"
        return True


UVICORN_NAME = _UvicornName()


class WebError(Exception):
    """The UI cannot start; one line for the administrator."""


def session_secret(config: Config) -> str:
    """From web.secret_file, else $MAILSIFT_WEB_SECRET, else random for this run only."""
    secret = configured_secret(config)
    if not secret:
        log.warning("no web.secret_file or $%s: using a random session secret; logins end when "
                    "the UI restarts", SECRET_ENV)
        return secrets.token_urlsafe(32)
    return secret


def configured_secret(config: Config) -> str | None:
    """The session secret web.secret_file or $MAILSIFT_WEB_SECRET gives (None: neither is set),
    or WebError when `mailsift web` would refuse it; configtest asks too, as a web line that
    said ok before a refused secret left the UI stopped after an upgrade done as README says."""
    try:
        secret = read_secret(config.web.secret_file, SECRET_ENV, "session secret")
    except SecretError as exc:
        raise WebError(f"{config.source}: web.secret_file: {exc}") from None
    if secret and len(secret) < MIN_SECRET:
        # It named neither the file nor the variable it was read from, nor how to make a longer one.
        where = (f"{config.source}: web.secret_file: {config.web.secret_file}"
                 if config.web.secret_file else f"${SECRET_ENV}")
        raise WebError(f"{where}: the session secret is {len(secret)} characters; allowed: at "
                       f"least {MIN_SECRET}, e.g. made by `head -c 32 /dev/urandom | base64`")
    return secret


def check_users(config: Config) -> None:
    """Named with the file and key, as a config error is: the admin must know where to add it."""
    if not any(u.role == "admin" for u in config.web.users):
        raise WebError(f"{config.source}: web.users: no admin in [[web.users]] (there is no "
                       "default password); allowed: at least one with role = \"admin\" and a "
                       "password_hash from `mailsift web hash-password`")


def check_listen(config: Config, host: str, port: int) -> None:
    """Bind web.listen once before uvicorn does, as uvicorn will (SO_REUSEADDR, IPv6 for a host
    with a colon). A port in use, or an address of another host, stopped uvicorn with exit
    status 3 and "ERROR: [Errno 98] error while attempting to bind on address ...", after the
    log had said the UI was running there, naming no key."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise WebError(f"{config.source}: web.listen: cannot listen on {config.web.listen}: "
                           f"{exc.strerror} (another program, or another mailsift web, holds that "
                           "port, or the address is not this host's); allowed: a free HOST:PORT "
                           "of this host, e.g. 127.0.0.1:8025") from None


# web.listen's hosts that mean every address of this host: ":8025" (as uvicorn reads an empty
# host), "0.0.0.0:8025" and "[::]:8025". None is an address a browser can be sent to.
EVERY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


def ui_url(host: str, port: int) -> str:
    """http://HOST:PORT/ as a browser takes it: an IPv6 address in brackets ("http://::1:8025/"
    is no address)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def listening_at(host: str, port: int) -> str:
    """Where the log says the UI is: web.listen = ":8025" read "http://:8025/", and an IPv6
    address "http://::1:8025/", neither an address a browser takes."""
    if host in EVERY_ADDRESS:
        return f"port {port} of every address of this host"
    return ui_url(host, port)


def serve(config: Config) -> None:
    import uvicorn

    from mailsift.quarantine.store import open_quarantine
    from mailsift.web.app import create_app

    check_users(config)
    host, port = split_host_port(config.web.listen)  # a HOST:PORT since the config loaded (ded8d03)
    check_listen(config, host, port)
    store = open_quarantine(config.quarantine, subaddressing=config.subaddressing)
    app = create_app(config, store, session_secret(config))
    log.info("review UI on %s", listening_at(host, port))
    proxies = config.web.trusted_proxies
    if proxies:
        log.info("X-Forwarded-For and X-Forwarded-Proto believed from %s", ", ".join(proxies))
    # uvicorn takes the client address from X-Forwarded-For only when the connection comes from
    # one of these, and then the rightmost address no trusted proxy holds (the one the outermost
    # proxy saw); with none listed, forwarded headers are ignored, as any client could write them.
    # log_config=None: uvicorn's lines (its start, errors, one per request) go through the one
    # handler `mailsift` set up, once, in its format, on stderr. uvicorn's own config wrote them
    # in another format and the request lines to stdout, and whether its `uvicorn` logger also
    # passed them on to ours (each line twice) was its config's choice, not ours.
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(UVICORN_NAME)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", log_config=None,
                    server_header=False, proxy_headers=bool(proxies),
                    forwarded_allow_ips=list(proxies))
    finally:  # a command run in a process that goes on (tests) leaves the logger as it was
        uvicorn_log.removeFilter(UVICORN_NAME)
