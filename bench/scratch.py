"""A throwaway PostgreSQL database beside the one named, for a benchmark run; dropped afterwards."""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "rr_bench") -> Iterator[str]:
    """Create `<prefix>_<random>` on the server of `server_url` (loopback only), yield its URL, drop it."""
    if make_url(server_url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("only a PostgreSQL server on this machine may be used")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        print(f"dropped {name}", file=sys.stderr)
