"""A pymilter milter that does nothing but add the four X-Spam headers.

`bench/milter.py` runs it as a reference pass: the cost of any Python milter through Postfix on
this machine (protocol, libmilter threads, header changes), so that the figures say how much of
mailsift's added latency is mailsift's own work. Usage, from the repository root:
`python -m bench.null_milter unix:/path/to.sock` (or `inet:PORT@HOST`; run as a file,
bench/milter.py would shadow pymilter's `milter`).
"""

from __future__ import annotations

import sys

import Milter

HEADERS = ("X-Spam-Flag", "X-Spam-Score", "X-Spam-Level", "X-Spam-Status")


class NullMilter(Milter.Base):
    """The same callbacks as mailsift's milter, answered the same way (no reply until eom)."""

    @Milter.noreply
    def connect(self, *_: object) -> int:
        return Milter.CONTINUE

    @Milter.noreply
    def envfrom(self, *_: object) -> int:
        return Milter.CONTINUE

    @Milter.noreply
    def envrcpt(self, *_: object) -> int:
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, *_: object) -> int:
        return Milter.CONTINUE

    @Milter.noreply
    def body(self, *_: object) -> int:
        return Milter.CONTINUE

    def eom(self) -> int:
        for name in HEADERS:
            self.addheader(name, "NO")
        return Milter.ACCEPT


def main() -> None:
    Milter.factory = NullMilter
    Milter.set_flags(Milter.ADDHDRS)
    Milter.runmilter("null", sys.argv[1], 600)


if __name__ == "__main__":
    main()
