"""Makes `bench` importable when a script is started as a file; the one place in bench/ that touches sys.path.

`python -m bench.run` (from the repository root) has the root on sys.path, so `from bench.common import ...` works
as it is. `.venv/bin/python bench/run.py` (from any folder) has `bench/` there instead, and no `bench` package.
Each script therefore starts with

    if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
        import _bootstrap  # noqa: F401

which finds this module in `bench/` and adds the repository root at the end of sys.path: PYTHONPATH keeps its
precedence (bench/cpu_per_request.py measures another checkout's service that way), and `bench/` stays where it
was, so that load.py's spawned driver processes (which start from the file too) find this module again.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.append(ROOT)
