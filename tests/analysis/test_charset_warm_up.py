"""A scoring worker does charset detection's one-time work before its first message."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# In a fresh interpreter: in the test process earlier tests may already have loaded every codec.
PROBE = textwrap.dedent("""
    import sys
    from mailsift.analysis import charsets
    {warm}
    before = {{name for name in sys.modules if name.startswith("encodings.")}}
    greek = ("Καλημέρα, τι κάνετε; Όλα καλά εδώ. " * 10).encode("iso-8859-7")
    charsets.decode(greek, "")
    print(len({{name for name in sys.modules if name.startswith("encodings.")}} - before))
""")


def _codecs_loaded_by_first_detection(warm: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE.format(warm=warm)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_detection_after_warm_up_loads_no_codec() -> None:
    assert _codecs_loaded_by_first_detection("charsets.warm_up()") == 0


def test_detection_without_warm_up_loads_codecs() -> None:
    """The other side: the probe sees the loading that warm_up saves a worker's first message."""
    assert _codecs_loaded_by_first_detection("") > 10
