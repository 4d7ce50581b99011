"""Does a domain imitate one of ours? Look-alike characters, IDN homographs and near misspellings.

Phishing aimed at a company's staff or customers comes from domains that read like the company's
own at a glance: `examp1e.org`, `exarnple.org`, `exmaple.org`, `еxample.org` with a Cyrillic `е`
(sent as xn--xample-2of.org), or `example.org.phish.example`, which starts with ours. Both sides
are reduced to a "skeleton" (IDNA decoded, NFKC, look-alike characters mapped to the Latin letter
they imitate, hyphens dropped); equal skeletons, or skeletons one typing slip apart, mean
imitation. The table is ours and deliberately small: the letters attackers actually use, not the
whole of Unicode's confusables list.
"""

from __future__ import annotations

import unicodedata

from mailsift.network.identities import org_domain, within_domains

# Cyrillic, Greek and Latin-extended letters, and digits, that pass for a Latin letter.
LOOKALIKES = str.maketrans({
    "а": "a", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "к": "k",
    "м": "m", "т": "t", "в": "b", "н": "h", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ɩ": "i", "ı": "i", "ł": "l",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "χ": "x", "υ": "u",
    "ε": "e", "β": "b", "η": "n", "0": "o", "1": "l", "3": "e", "5": "s", "|": "l", "-": None,
})
# One slip (a letter added, dropped, changed, or two swapped) is a look-alike; two already pair
# unrelated names such as northwind/southwind.
MAX_SLIPS = 1
# Letter pairs that read as one letter in most fonts.
LOOKALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("nn", "m"))


def skeleton(domain: str) -> str:
    text = unicodedata.normalize("NFKC", _unicode(domain)).lower()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = text.translate(LOOKALIKES)
    for pair, letter in LOOKALIKE_PAIRS:
        text = text.replace(pair, letter)
    return text


def _unicode(domain: str) -> str:
    labels = []
    for label in domain.lower().split("."):
        try:
            labels.append(label.encode("ascii").decode("idna") if label.startswith("xn--") else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def imitated(domain: str, own_domains: list[str]) -> str | None:
    """The own domain that `domain` imitates, if any; a domain (or subdomain) of ours never does."""
    domain = domain.lower().rstrip(".")
    if not domain or within_domains(domain, own_domains):
        return None
    candidates = {domain, org_domain(domain)}
    for own in own_domains:
        wanted = skeleton(own)
        if domain.startswith(own + ".") or any(_close(skeleton(c), wanted) for c in candidates):
            return own
    return None


def _close(text: str, wanted: str) -> bool:
    return edit_distance(text, wanted, MAX_SLIPS) <= MAX_SLIPS


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts one); > limit means far."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]
