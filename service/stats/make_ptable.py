"""Generate service/stats/ptable.json, the cell-key perturbation table; `python -m service.stats.make_ptable`.

How: the 256 cell keys are put in two fixed random orders (sorted by SHA-256 of the seed, a label and the key, so
each order depends on nothing but the seed, not on Python's `random` module or its version). A cell key's dither is
its rank in the first order plus one half, over 256; the parts of a cell that several institutions share are
dithered by their rank in the second order. A value v is released as 5 * floor(v / 5 + dither).

Why: with record keys drawn uniformly at random, a cell key is uniform on 0..255 and so is its rank: a value
5q + r is released as 5q + 5 with probability r / 5 (unbiased random rounding to base 5), and for a fixed key the
released value never decreases as the value grows. The table is public, like the ONS's; the protection comes from
the record keys, which never leave the database.

The seed is fixed and recorded in the file, so running this module again rewrites the file bit for bit;
`--check` only verifies that the shipped file is what the seed produces. A new table needs a new version and seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

VERSION = "2026.2"
SEED = 20260101
BASE = 5
KEYS = 256
PTABLE_PATH = Path(__file__).with_name("ptable.json")


def key_order(seed: int, label: str = "") -> list[int]:
    """Return the 256 keys in the random order fixed by `seed` and `label` (a permutation of 0..255)."""
    return sorted(range(KEYS), key=lambda key: hashlib.sha256(f"{seed}:{label}{key}".encode()).digest())


def build_ptable(seed: int = SEED, version: str = VERSION) -> dict[str, Any]:
    """Return the table document: the two orders of the keys, whose ranks are the dithers."""
    return {
        "version": version,
        "base": BASE,
        "generatedBy": "python -m service.stats.make_ptable",
        "seed": seed,
        "order": key_order(seed),
        "sharedOrder": key_order(seed, "shared:"),
    }


def render(document: dict[str, Any]) -> str:
    """Return the exact text written to ptable.json (stable key order, trailing newline)."""
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the shipped file instead of writing it")
    args = parser.parse_args(argv)
    text = render(build_ptable())
    if args.check:
        same = PTABLE_PATH.exists() and PTABLE_PATH.read_text(encoding="utf-8") == text
        print(f"{PTABLE_PATH}: {'up to date' if same else 'DIFFERS from seed ' + str(SEED)}")
        return 0 if same else 1
    PTABLE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PTABLE_PATH} (version {VERSION}, seed {SEED})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
