"""Scan limits: big or deep messages are analysed in part, within a bounded cost, and never fail."""

from __future__ import annotations

from tests.analysis.helpers import config, multipart, multipart_message, part, run, simple
from tests.malformed_messages import MALFORMED
from tests.support.cpu_time import cpu_time


def test_max_parts_stops_the_walk_and_records_the_fact() -> None:
    raw = multipart_message([part("text/plain", f"part {i}") for i in range(50)])
    message = run(raw, config(max_parts=10))
    assert message.mime_parts == 10
    assert len(message.text_parts) == 9
    assert message.truncated
    assert "MIME_TOO_MANY_PARTS" in message.facts


def test_max_depth_stops_descending() -> None:
    nested = multipart([part("text/plain", "deep")], boundary="inner")
    inner = part('multipart/mixed; boundary="inner"', nested)
    raw = multipart_message([part("text/plain", "top"), inner], boundary="outer")
    assert [p.text for p in run(raw).text_parts] == ["top", "deep"]
    shallow = run(raw, config(max_depth=1))
    assert [p.text for p in shallow.text_parts] == ["top"]
    assert "MIME_TOO_DEEP" in shallow.facts
    assert shallow.truncated


def test_2000_nested_multiparts_are_fast_and_bounded() -> None:
    raw = MALFORMED["nested_multiparts_2000"]
    message, seconds = cpu_time(lambda: run(raw))
    # Guards hostile nesting against a walk gone quadratic, not speed: 25 ms of CPU with the walk
    # stopped at max_depth's 30 levels, 80 ms to 100 levels (max_depth=100).
    assert seconds < 1.0
    assert message.max_depth == 30
    assert "MIME_TOO_DEEP" in message.facts


def test_body_is_read_up_to_max_bytes_but_headers_whole() -> None:
    body = "word " * 20000
    raw = simple(body, extra=[("X-Long", "v" * 50000)])
    message = run(raw, config(max_bytes=16 * 1024))
    assert len(message.text_parts[0].text) == 16 * 1024
    assert message.header("X-Long") == "v" * 50000
    assert message.truncated
    assert message.size == len(raw)


def test_truncation_does_not_blame_the_sender() -> None:
    payload = "A" * 60000
    raw = multipart_message([part("application/octet-stream", payload, "base64")])
    message = run(raw, config(max_bytes=16 * 1024))
    assert message.truncated
    assert "MIME_BOUNDARY_UNCLOSED" not in message.facts
    assert "MIME_BAD_BASE64" not in message.facts


def test_parameters_past_64_semicolons_are_not_read_so_a_huge_content_type_costs_no_seconds() -> None:
    """The stdlib's parameter parser takes time in the square of a value's ";" (mime.MAX_SEMICOLONS):
    on the old code the first message took 3.2 s of CPU and the second 2 s, in the milter, in
    `mailsift learn` and on the message page alike. Parameters before the cut are still read, and
    empty ones (one spam of the corpus has 7,138) neither count nor make a fact."""
    many = simple("body", "text/plain; charset=koi8-r" + "; x=y" * 80_000)
    quoted = multipart_message([part('application/octet-stream; name="' + ";" * 32_768 + '"', "data"),
                                part("text/plain" + "; " * 7_000 + "; charset=koi8-r", "text")])
    for raw in (many, quoted):
        message, seconds = cpu_time(lambda raw=raw: run(raw))  # 40 ms and 10 ms
        assert seconds < 0.5
    message = run(many)
    assert message.text_parts[0].charset == "koi8-r"
    assert message.facts.items["MIME_MALFORMED"] == "content-type: parameters past the 64th ';' not read"
    message = run(quoted)
    assert [(a.declared_type, a.filename) for a in message.attachments] == [("application/octet-stream", "")]
    assert message.text_parts[0].charset == "koi8-r"
