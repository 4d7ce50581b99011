"""A real DNS server for the network tests: dnsmasq on a loopback port, serving `zone.py`.

Why dnsmasq (Debian package dnsmasq-base, the binary without the system service): it serves
TXT, MX, A and PTR records from command-line-style lines written by the test, answers NXDOMAIN
and NODATA correctly for the names it owns (`local=/test/`), refuses everything else (a SERVFAIL
for the resolver), starts in milliseconds as an unprivileged foreground child, and can forward one
zone to another server: `never.test` goes to a UDP socket that reads nothing, which gives the
"zone that never answers" of the budget tests while the rest of the message's lookups still get
answers. knot or nsd would need zone files plus a second server for that zone.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import nacl.encoding
import nacl.signing

from tests.network.zone import PSL_ZONE, SILENT_KEYS, records
from tests.support.ports import LOOPBACK, free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
START_TIMEOUT_S = 10.0
SILENT_ZONE = "never.test"


class DnsServer:
    """dnsmasq serving the test zones; `silent` is the socket standing in for a dead server."""

    def __init__(self, directory: Path, dkim_public_key: str, ed25519_public_key: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.silent.bind((LOOPBACK, 0))
        silent_port = self.silent.getsockname()[1]
        conf = directory / "dnsmasq.conf"
        conf.write_text("\n".join([
            f"port={self.port}", f"listen-address={LOOPBACK}", "bind-interfaces", "no-resolv",
            "no-hosts", "keep-in-foreground", "user=root", "cache-size=0", "log-queries",
            "log-facility=-", "local=/test/", "local=/in-addr.arpa/", "local=/ip6.arpa/",
            f"local=/{PSL_ZONE}/", f"server=/{SILENT_ZONE}/{LOOPBACK}#{silent_port}",
            f"server=/{SILENT_KEYS}/{LOOPBACK}#{silent_port}",
            *records(dkim_public_key, ed25519_public_key), ""]))
        self.log = directory / "dnsmasq.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([DNSMASQ, f"--conf-file={conf}"], stdout=log, stderr=log)
        self._wait_until_answering()

    @property
    def address(self) -> str:
        """What goes into dns.nameservers."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def silent_address(self) -> str:
        """A nameserver that never answers anything."""
        return f"{LOOPBACK}:{self.silent.getsockname()[1]}"

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        query = dns.message.make_query("mail.shop.test", "A")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.log.read_text()[-2000:]}")
            try:
                dns.query.udp(query, LOOPBACK, port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dnsmasq silent on port {self.port}") from None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.silent.close()


def make_dkim_key(directory: Path) -> tuple[bytes, str]:
    """A fresh RSA key: (private key PEM for dkim.sign, base64 public key for the p= tag)."""
    private = directory / "dkim.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(private)], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    return private.read_bytes(), base64.b64encode(public).decode()


def make_ed25519_key() -> tuple[bytes, str]:
    """A fresh ed25519 key (RFC 8463): (base64 seed for dkim.sign, base64 public key for p=)."""
    key = nacl.signing.SigningKey.generate()
    public = key.verify_key.encode(nacl.encoding.Base64Encoder).decode()
    return key.encode(nacl.encoding.Base64Encoder), public
