"""A private Postfix instance for end-to-end tests: real smtpd, real cleanup/qmgr/smtp, real milter.

Why a real Postfix and not pymilter's TestCtx alone: what users hit is how Postfix drives the
milter — which macros arrive when, what a reply code turns into at the SMTP client, what happens
to a message whose recipients were all removed, and what `milter_default_action` does when the
milter is dead or slow. Only Postfix can tell us that.

Layout of the base directory B (a 0755 directory under /tmp, because Postfix's daemons run as
`postfix` and `nobody` and must traverse every parent; pytest's tmp_path sits under a 0700 one):

    B/etc/main.cf, B/etc/master.cf   config, written from scratch (/etc/postfix is never read)
    B/queue/                         queue_directory (Postfix creates its subdirectories)
    B/data/                          data_directory, owned by postfix
    B/maillog                        every daemon's log (maillog_file), the first place to look

Two smtpd services listen on loopback: `smtpd_port` with the milter, `plain_port` without it
(`-o smtpd_milters=`): the reinjection port for released quarantine mail, and the no-milter
baseline for benchmarks; on a host with ::1, `ipv6_port` is a third, with the milter, on [::1]
for a real IPv6 client (the others claim one by XCLIENT). All mail, bounces included, is relayed
to `relayhost = [127.0.0.1]:SINK`, so a test can account for every message it sent.

Local submission (`sendmail`: a web site's PHP mail()) goes sendmail -> postdrop -> maildrop ->
pickup -> cleanup, and reaches the milter through `non_smtpd_milters`, which names the same milter
as `smtpd_milters`, as `mailsift postfix` prints it. To submit as any Unix user, the instance has
its own command directory, B/bin: links to /usr/sbin's Postfix commands, but a postdrop without
set-gid. The real one is set-gid postdrop, and a set-gid program reads only /etc/postfix/main.cf
for a non-root user (alternate_config_directories there), which this instance never touches; the
caller gets the postdrop group instead (`sendmail`). The queue file is the user's either way, so
pickup sees the same uid as on a real host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import LOOPBACK, LOOPBACK6, free_port, has_loopback6, wait_for_port
from tests.support.procs import alive, children

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
POSTSUPER = Path("/usr/sbin/postsuper")
POSTKICK = Path("/usr/sbin/postkick")
SENDMAIL = Path("/usr/sbin/sendmail")
POSTDROP_GROUP = "postdrop"
DAEMON_DIRECTORY = Path("/usr/lib/postfix/sbin")

START_TIMEOUT_S = 30.0  # first start takes 2-3 s (postfix-script checks and creates the queue)
STOP_TIMEOUT_S = 15.0
RELOAD_TIMEOUT_S = 10.0
QUEUE_TIMEOUT_S = 20.0
POLL_S = 0.02

# Queue subdirectories that hold a message not yet delivered (or parked); `corrupt` and `saved`
# would mean Postfix itself failed, which a test should see too.
PENDING_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")


def backdate(path: Path) -> None:
    """Date a config file a minute back. postconf took 2 s to read a main.cf written within the
    last second or so (it waits for the file to settle); dated back, it reads it at once."""
    then = time.time() - 60
    os.utime(path, (then, then))


def available() -> bool:
    """True when the Postfix programs the harness drives are installed."""
    return POSTFIX.exists() and POSTCONF.exists() and DAEMON_DIRECTORY.is_dir()


class PostfixError(RuntimeError):
    """Postfix did not do what the harness asked; the message carries the end of the maillog."""


class PostfixInstance:
    """One private Postfix: write config, start, reconfigure, reload, wait for the queue, stop."""

    def __init__(self, sink_port: int, *, milter: str | None = None,
                 milter_default_action: str = "tempfail", root: Path | None = None,
                 hostname: str = "mx.test.invalid") -> None:
        """`milter`: Postfix notation (`inet:127.0.0.1:PORT`); None runs without any milter.

        `root`: where the 0755 base directory is made (default: the system temp dir, 1777).
        """
        self.base = Path(tempfile.mkdtemp(prefix="mailsift-postfix-", dir=root))
        self.base.chmod(0o755)
        self.etc = self.base / "etc"
        self.queue = self.base / "queue"
        self.data = self.base / "data"
        self.bin = self.base / "bin"
        self.maillog = self.base / "maillog"
        self.hostname = hostname
        self.sink_port = sink_port
        self.smtpd_port = free_port()
        self.plain_port = free_port()
        # The milter-enabled smtpd on [::1] too, for a real IPv6 client; None without ::1
        self.ipv6_port = free_port(LOOPBACK6) if has_loopback6() else None
        self.milter = milter
        self.milter_default_action = milter_default_action
        self._write_config()

    # -- configuration ---------------------------------------------------------------------------

    def _main_cf(self) -> dict[str, str]:
        b = self.base
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "daemon_directory": str(DAEMON_DIRECTORY),
            "command_directory": str(self.bin),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            # Postfix refuses a maillog_file outside the listed prefixes: startup is fatal.
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(b),
            "myhostname": self.hostname,
            "mydomain": "test.invalid",
            "myorigin": "$myhostname",
            "inet_interfaces": LOOPBACK,
            # Both, though smtpd listens on IPv4 loopback only: with IPv6 off, smtpd refuses an
            # IPv6 client claimed by XCLIENT (ADDR=IPV6:2001:db8::1), and IPv6 clients need tests.
            "inet_protocols": "all",
            # Nothing is local: every recipient, bounces included, goes to the sink.
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "local_transport": "error:no local delivery in the test instance",
            "relayhost": f"[{LOOPBACK}]:{self.sink_port}",
            "relay_transport": "relay",
            "default_transport": "smtp",
            # Any client may relay to any domain: the test client is loopback (mynetworks), and an
            # XCLIENT-claimed outside address is still allowed by relay_domains = static:ALL.
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "static:ALL",
            "smtpd_relay_restrictions": "permit_mynetworks, permit_auth_destination, reject",
            "smtpd_recipient_restrictions": "",
            # Lets a test claim a client address or a SASL login (XCLIENT ADDR=... LOGIN=...)
            # without a SASL server: what the milter sees in {auth_authen} and the connect info.
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            # Tests provoke rejects on purpose; Postfix must not slow down or drop the client.
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "smtpd_client_connection_rate_limit": "0",
            "in_flow_delay": "0",
            # Retry a deferred message quickly (e.g. sink briefly unavailable) instead of in minutes.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            # The milter: protocol 6, and the macros mailsift needs — the queue id {i} from MAIL
            # FROM on (needs smtpd_delay_open_until_valid_rcpt = no for MAIL FROM itself) and the
            # SASL login {auth_authen}.
            "smtpd_milters": self.milter or "",
            "non_smtpd_milters": self.milter or "",
            "milter_protocol": "6",
            "milter_default_action": self.milter_default_action,
            "milter_connect_macros": "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name}",
            "milter_helo_macros": "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
            "milter_mail_macros": "i {auth_type} {auth_authen} {auth_author} {mail_addr} "
                                  "{mail_host} {mail_mailer}",
            "milter_rcpt_macros": "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
            "milter_data_macros": "i",
            "milter_end_of_header_macros": "i",
            "milter_end_of_data_macros": "i {auth_authen}",
            "smtpd_delay_open_until_valid_rcpt": "no",
            # A dead milter port must fail fast; a slow milter is bounded by content_timeout.
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "60s",
        }

    def _master_cf(self) -> str:
        service = "{name:<26} {kind:<10} {private:<7} {unpriv:<7} n       {wakeup:<7} {limit:<7} {cmd}"
        rows = [
            (f"{LOOPBACK}:{self.smtpd_port}", "inet", "n", "-", "-", "-", "smtpd"),
            (f"{LOOPBACK}:{self.plain_port}", "inet", "n", "-", "-", "-",
             "smtpd -o smtpd_milters= -o syslog_name=postfix/plain"),
            *([(f"[{LOOPBACK6}]:{self.ipv6_port}", "inet", "n", "-", "-", "-", "smtpd")]
              if self.ipv6_port else []),
            ("cleanup", "unix", "n", "-", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "1000?", "0", "flush"),
            ("smtp", "unix", "-", "-", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "-", "-", "smtp -o syslog_name=postfix/relay"),
            ("error", "unix", "-", "-", "-", "-", "error"),
            ("retry", "unix", "-", "-", "-", "-", "error"),
            ("discard", "unix", "-", "-", "-", "-", "discard"),
            ("showq", "unix", "n", "-", "-", "-", "showq"),
            ("anvil", "unix", "-", "-", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "-", "1", "scache"),
            # Without proxymap smtpd hangs ~110 s before its banner.
            ("proxymap", "unix", "-", "-", "-", "-", "proxymap"),
            ("postlog", "unix-dgram", "n", "-", "-", "1", "postlogd"),
            # Local submission: the maildrop queue, filled by postdrop, emptied into cleanup.
            ("pickup", "unix", "n", "-", "60", "1", "pickup"),
        ]
        lines = [service.format(name=n, kind=k, private=p, unpriv=u, wakeup=w, limit=lim, cmd=c)
                 for n, k, p, u, w, lim, c in rows]
        return "# written by tests/support/postfix.py; chroot is off for every service\n" + \
            "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        self.etc.mkdir(mode=0o755)
        self.queue.mkdir(mode=0o755)
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postfix", "postfix")
        main = "".join(f"{key} = {value}\n" for key, value in self._main_cf().items())
        (self.etc / "main.cf").write_text("# written by tests/support/postfix.py\n" + main)
        (self.etc / "master.cf").write_text(self._master_cf())
        self._write_commands()

    def _write_commands(self) -> None:
        """B/bin: /usr/sbin's Postfix commands, with a postdrop that is not set-gid (see top)."""
        self.bin.mkdir(mode=0o755)
        for command in POSTFIX.parent.iterdir():
            if command.name.startswith("post") or command == SENDMAIL:
                (self.bin / command.name).symlink_to(command)
        (self.bin / "postdrop").unlink()
        shutil.copyfile(POSTFIX.parent / "postdrop", self.bin / "postdrop")
        (self.bin / "postdrop").chmod(0o755)

    def postconf(self, **settings: str | int) -> None:
        """Change main.cf (`postconf -e`); takes effect for new processes after `reload()`."""
        if not settings:
            return
        args = [f"{key}={value}" for key, value in settings.items()]
        self._run(str(POSTCONF), "-c", str(self.etc), "-e", *args)

    def get(self, key: str) -> str:
        """The current value of a main.cf setting, as Postfix reads it."""
        return self._run(str(POSTCONF), "-c", str(self.etc), "-h", key).strip()

    def set_milter(self, milter: str | None, default_action: str | None = None) -> None:
        """Point the milter-enabled smtpd at `milter` (None: no milter) and reload if it changed."""
        settings: dict[str, str | int] = {}
        if milter != self.milter:
            settings["smtpd_milters"] = settings["non_smtpd_milters"] = milter or ""
            self.milter = milter
        if default_action is not None and default_action != self.milter_default_action:
            settings["milter_default_action"] = default_action
            self.milter_default_action = default_action
        if settings:
            self.postconf(**settings)
            if self.running():
                self.reload()

    def sendmail(self, raw: bytes, recipients: list[str], *, uid: int = 0,
                 sender: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """Hand `raw` to Postfix's sendmail command as Unix user `uid`, as PHP's mail() does:
        `-f sender` when given, else Postfix takes the user's login. The command only drops the
        message into the maildrop queue: what the milter says shows in the log and the sink."""
        options = ["-f", sender] if sender is not None else []
        user = {} if uid == 0 else {"user": uid, "group": uid,
                                    "extra_groups": [POSTDROP_GROUP]}
        done = subprocess.run([str(SENDMAIL), *options, "-i", "--", *recipients], input=raw,
                              capture_output=True, timeout=60, cwd="/",
                              env={"MAIL_CONFIG": str(self.etc), "PATH": "/usr/bin:/bin"}, **user)
        if done.returncode != 0:
            raise PostfixError(f"sendmail as uid {uid} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace').strip()}\n{self.log_tail()}")
        return done

    def kick_pickup(self) -> None:
        """Make pickup scan the maildrop queue now, as it does every 60 s or on a new message:
        a message a milter deferred (451) waits there for it."""
        self._run(str(POSTKICK), "-c", str(self.etc), "public", "pickup", "W")

    def maildrop(self) -> list[Path]:
        """Messages waiting in the maildrop queue (submitted, not yet accepted by cleanup)."""
        return sorted((self.queue / "maildrop").glob("*"))

    # -- process control -------------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise PostfixError(f"{' '.join(args)} failed ({done.returncode}): "
                               f"{done.stderr.strip()}\n{self.log_tail()}")
        return done.stdout

    @property
    def pid_file(self) -> Path:
        return self.queue / "pid" / "master.pid"

    def master_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.master_pid()
        return pid is not None and alive(pid)

    def start(self) -> None:
        """Start the master and wait until both smtpd ports answer."""
        self._run(str(POSTFIX), "-c", str(self.etc), "start")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.running():
            if time.monotonic() > deadline:
                raise PostfixError(f"postfix master did not start\n{self.log_tail()}")
            time.sleep(POLL_S)
        for port, host in self._listening():
            wait_for_port(port, max(deadline - time.monotonic(), 1.0), host)

    def _listening(self) -> list[tuple[int, str]]:
        """(port, address) of each smtpd."""
        ports = [(self.smtpd_port, LOOPBACK), (self.plain_port, LOOPBACK)]
        return [*ports, (self.ipv6_port, LOOPBACK6)] if self.ipv6_port else ports

    def stop(self) -> None:
        """`postfix stop`, then wait for the master to exit (never leave an orphaned master)."""
        pid = self.master_pid()
        if pid is None or not alive(pid):
            return
        subprocess.run([str(POSTFIX), "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(pid):
            if time.monotonic() > deadline:
                # `abort` is postfix's own hard stop; the master is ours (we started it).
                subprocess.run([str(POSTFIX), "-c", str(self.etc), "abort"], capture_output=True,
                               timeout=60)
                time.sleep(0.5)
                if alive(pid):
                    os.kill(pid, 9)
                break
            time.sleep(POLL_S)

    def reload(self) -> None:
        """Re-read main.cf/master.cf and wait until no smtpd of the old configuration remains.

        `postfix reload` is asynchronous: idle smtpd processes of the old generation exit "at
        their earliest convenience", and one of them could still accept the next connection
        with the old milter settings. Waiting for them to go makes the next test deterministic.
        """
        master = self.master_pid()
        if master is None:
            raise PostfixError("reload: postfix is not running")
        old = children(master, "smtpd")
        self._run(str(POSTFIX), "-c", str(self.etc), "reload")
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while any(alive(pid) for pid in old):
            if time.monotonic() > deadline:
                raise PostfixError(f"old smtpd processes {sorted(old)} still alive after reload")
            time.sleep(POLL_S)
        for port, host in self._listening():
            wait_for_port(port, RELOAD_TIMEOUT_S, host)

    def cleanup(self) -> None:
        """Stop and remove the base directory (kept when MAILSIFT_KEEP_POSTFIX is set)."""
        self.stop()
        if not os.environ.get("MAILSIFT_KEEP_POSTFIX"):
            shutil.rmtree(self.base, ignore_errors=True)

    # -- queue and log ---------------------------------------------------------------------------

    def queued(self) -> list[Path]:
        """Queue files of messages Postfix still holds (not yet delivered, deferred or held)."""
        files: list[Path] = []
        for name in PENDING_QUEUES:
            for dirpath, _dirs, names in os.walk(self.queue / name):
                files.extend(Path(dirpath, n) for n in names)
        return files

    def wait_queue_empty(self, timeout: float = QUEUE_TIMEOUT_S) -> None:
        """Return once every accepted message has left the queue (delivered or bounced)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.queued()
            if not left:
                return
            if time.monotonic() > deadline:
                raise PostfixError(f"{len(left)} message(s) still queued after {timeout:.0f} s: "
                                   f"{[p.name for p in left]}\n{self.log_tail()}")
            time.sleep(POLL_S * 2)

    def purge_queue(self) -> int:
        """Delete every queued message (`postsuper -d ALL`): a failed test must not leave mail
        behind for the next one. Returns how many files were queued."""
        left = len(self.queued())
        if left:
            self._run(str(POSTSUPER), "-c", str(self.etc), "-d", "ALL")
        return left

    def log_offset(self) -> int:
        """The maillog's current size: pass to `log_text(since=...)` to see only what follows."""
        try:
            return self.maillog.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with self.maillog.open("rb") as fh:
                fh.seek(since)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "maillog tail:\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def log_for(self, queue_id: str) -> list[str]:
        """maillog lines about one queue id."""
        pattern = re.compile(rf"\b{re.escape(queue_id)}\b")
        return [line for line in self.log_text().splitlines() if pattern.search(line)]
