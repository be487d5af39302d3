"""Generate service/stats/ptable.json, the cell-key perturbation table; `python -m service.stats.make_ptable`.

How: the 256 cell keys are put in one fixed random order (sorted by SHA-256 of the seed and the key, so the order
depends on nothing but the seed, not on Python's `random` module or its version). For residue r = count mod 5
(r = 1..4) the first round(256 * r / 5) keys of that order round up (51, 102, 154 and 205 keys); all others round
down; residue 0 is never adjusted. Because each residue takes a prefix of the same order, the keys that round up for
r are a subset of those for r + 1: every key behaves like a fixed threshold, so for a fixed key the released value
never decreases as the count grows.

Why: with record keys drawn uniformly at random, a cell key is uniform on 0..255, so a count 5q + r is released as
5q + 5 with probability round(256 r / 5) / 256, which is r / 5 up to 1/640 (unbiased random rounding to base 5).
The table is public, like the ONS's; the protection comes from the record keys, which never leave the database.

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

VERSION = "2026.1"
SEED = 20260101
BASE = 5
KEYS = 256
PTABLE_PATH = Path(__file__).with_name("ptable.json")


def key_order(seed: int) -> list[int]:
    """Return the 256 keys in the random order fixed by `seed` (a permutation of 0..255)."""
    return sorted(range(KEYS), key=lambda key: hashlib.sha256(f"{seed}:{key}".encode()).digest())


def build_ptable(seed: int = SEED, version: str = VERSION) -> dict[str, Any]:
    """Return the table document: for each residue 1..4 a 256-character 0/1 string, '1' where that key rounds up."""
    order = key_order(seed)
    round_up = {}
    for residue in range(1, BASE):
        up = set(order[: round(KEYS * residue / BASE)])
        round_up[str(residue)] = "".join("1" if key in up else "0" for key in range(KEYS))
    return {
        "version": version,
        "base": BASE,
        "generatedBy": "python -m service.stats.make_ptable",
        "seed": seed,
        "roundUp": round_up,
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
