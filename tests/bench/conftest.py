"""Put the repository root on sys.path: `bench` is a top-level package of the checkout, not installed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
