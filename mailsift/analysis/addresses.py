"""Address headers (From, To, Reply-To, ...) parsed without letting a hostile one stop the scan.

The stdlib parser (email.utils) recurses once per nested comment, "((((", and once per group,
"a: b: c:", so a header with a thousand of either raises RecursionError. Fuzzing found it: the
tokenizer, the From checks and the quarantine summary all read From and To, and such a message
could not be scored at all; the milter then took milter.on_error for it, delivering a crafted
spam unscored or deferring it until it bounced. Such a header falls back to the bare addresses
in it, which is as much as a rule or the tokenizer could use of it anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import getaddresses, parseaddr

# local@domain with none of the characters that delimit addresses, comments or groups, tried
# only where such a run of characters starts: tried at every position, a long run without "@"
# was read again from each of its characters, in time the square of its length (40 KB of "a"
# after the comments that send a header here: 4 s of CPU; the 97 KB that fit in Postfix's
# default header_size_limit some 24 s by that square). A match can only start there anyway,
# so the addresses found are the same.
BARE_ADDRESS = re.compile(r"(?<![^\s<>()\[\],;:\"@])[^\s<>()\[\],;:\"@]++@[^\s<>()\[\],;:\"@]+")


def address_pairs(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(display name, address) of every address in the header values, as getaddresses gives."""
    values = list(values)
    try:
        return tuple(getaddresses(values))
    except RecursionError:
        return _bare(values)


def parse_address(value: str) -> tuple[str, str]:
    """(display name, address) of the first address in one value, as parseaddr gives."""
    try:
        return parseaddr(value)
    except RecursionError:
        return next(iter(_bare([value])), ("", ""))


def _bare(values: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(("", found) for value in values for found in BARE_ADDRESS.findall(value))
