"""The anomaly facts the analysis can record in `Message.facts`, with what each one means.

Rule writers score these with `eval:fact(NAME)`. Parsing never fails on bad input: it records what
was wrong here instead, so a broken message is still scored (and broken structure is itself a spam
signal). Correct use of any charset, however exotic, never produces a fact: multilingual ham must
not pay for its language.
"""

from __future__ import annotations

FACTS: dict[str, str] = {
    # Header block
    "MIME_NO_HEADERS": "the message does not start with a header field (binary garbage, body only)",
    "MIME_NO_SEPARATOR": "the header block is not ended by an empty line; the body starts at the first "
    "line that is not a header",
    "HEADER_CONTINUATION_FIRST": "the first header line starts with white space (a continuation of nothing)",
    "HEADER_NUL": "a NUL byte inside the header block",
    "HEADER_TOO_LONG": "a header line longer than the 998 octets RFC 5322 allows",
    "HEADER_8BIT": "raw 8-bit bytes in a header that are not valid UTF-8 (neither RFC 2047 nor RFC 6532)",
    "HEADER_BAD_ENCODED_WORD": "a broken RFC 2047 encoded word: bad base64, unknown or wrong charset",
    # MIME structure
    "MIME_MALFORMED": "a MIME header that cannot be understood, e.g. a Content-Type without a '/'",
    "MIME_MISSING_BOUNDARY": "a multipart Content-Type without a boundary parameter",
    "MIME_BOUNDARY_NOT_FOUND": "a multipart body in which its boundary never occurs",
    "MIME_BOUNDARY_UNCLOSED": "a multipart body whose closing boundary (--boundary--) is missing",
    "MIME_TOO_MANY_PARTS": "more MIME parts than config.scan.max_parts; the rest was not analysed",
    "MIME_TOO_DEEP": "multiparts nested deeper than config.scan.max_depth; the deeper ones were not analysed",
    "MIME_BAD_CTE": "an unknown Content-Transfer-Encoding; the part was read as 8bit",
    "MIME_BAD_BASE64": "a base64 part with characters outside the alphabet or wrong padding",
    "MIME_BAD_QP": "a quoted-printable part with '=' not followed by two hex digits or a line break",
    "MIME_BASE64_TEXT": "a text part sent as base64 although it is plain 7-bit ASCII (hides words)",
    "BODY_NUL": "a NUL byte in a decoded text part",
    # Charsets
    "CHARSET_UNKNOWN": "a declared charset that no codec knows; the text was decoded by detection",
    "CHARSET_MISMATCH": "the declared charset could not decode the text; the text was decoded by detection",
    "CHARSET_MISSING_8BIT": "8-bit text without a declared charset that is not UTF-8; decoded by detection",
    # HTML
    "HTML_MALFORMED": "HTML that ends inside a tag or comment, or has unbalanced comment markers",
    # Safety net
    "ANALYSIS_ERROR": "an internal error stopped the analysis (a bug: please report it with the message)",
}
