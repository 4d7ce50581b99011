"""A milter standing in for OpenDKIM or OpenDMARC beside mailsift in smtpd_milters, for the e2e
tests: it adds one Authentication-Results header in Postfix's myhostname (the `j` macro, as
their AuthservID defaults to the host name) at the top, with smfi_insheader at index 1, where
both put theirs.

Run as `python -m tests.e2e.dkim_like_milter PORT`: it listens on inet:PORT@127.0.0.1 (the
test waits for the port). Our own code, a few lines of pymilter; no real DKIM.
"""

from __future__ import annotations

import sys

import Milter

AUTH_RESULTS = "Authentication-Results"
RESULT = "dkim=pass header.d=signed.example"  # what the test finds in the mailbox


class DkimLikeMilter(Milter.Base):
    """Adds `<myhostname>; dkim=pass header.d=signed.example` to every message."""

    def eom(self) -> int:
        self.addheader(AUTH_RESULTS, f"{self.getsymval('j')}; {RESULT}", 1)
        return Milter.ACCEPT


def main(port: int) -> None:
    Milter.factory = DkimLikeMilter
    Milter.set_flags(Milter.ADDHDRS)
    Milter.runmilter("dkim-like", f"inet:{port}@127.0.0.1", 10)


if __name__ == "__main__":
    main(int(sys.argv[1]))
