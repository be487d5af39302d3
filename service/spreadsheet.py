"""CSV that opens in a spreadsheet as it was meant: every statistics table, export and access-log page.

RFC 4180 (CRLF line ends, quotes doubled), UTF-8 with a byte order mark (without one, Excel reads the bytes in the
machine's code page), every cell quoted (so a list cell holding the delimiter never splits), and the delimiter
chosen by the caller: `,` by default, `;` for Excel with Dutch settings (which splits on `;` and reads `,` as the
decimal sign, so with `;` a fraction is written 0,25: written 0.25 it would become text, or 1.500 fifteen hundred).
A text cell that starts with a formula character gets a leading quote (OWASP CSV injection), so a spreadsheet shows
it as text instead of running it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from service.openapi import Codes, code
from service.schemas import CamelSchema

CSV = "text/csv"
BOM = "\ufeff"
DELIMITERS = (",", ";")
DELIMITER = Codes("Delimiter", DELIMITERS, "A CSV cell delimiter: a comma, or a semicolon for Dutch spreadsheets.",
                  ("COMMA", "SEMICOLON"))
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = ";"  # inside one quoted cell, as exports joined lists before there was a choice of delimiter


class CsvArgs(CamelSchema):
    """The delimiter of a CSV answer (ignored for other media types)."""

    delimiter = code(DELIMITER, load_default=",", metadata={
        "description": "Cell delimiter when the answer is CSV (`Accept: text/csv`): `,` (default) or `;` for a "
                       "spreadsheet with Dutch settings. Send it URL-encoded: `%2C` or `%3B`."})


def defused(text: str) -> str:
    """Text a spreadsheet shows as text: one starting with a formula character gets a leading quote."""
    return "'" + text if text.startswith(FORMULA_START) else text


def decimal_sign(delimiter: str) -> str:
    return "," if delimiter == ";" else "."


def cell(value: Any, decimal: str = ".") -> str:
    """One value as a CSV cell: '' for null, true/false, numbers as JSON writes them (with `decimal` as the
    decimal sign), lists joined by LIST_SEPARATOR, text defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value).replace(".", decimal)
    if isinstance(value, list | tuple):
        return defused(LIST_SEPARATOR.join(str(v) for v in value))
    return defused(str(value))


def csv_writer(buffer: io.StringIO, delimiter: str) -> Any:
    return csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> str:
    """A whole CSV document: the BOM, a header line and a line per row (values through `cell`)."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv_writer(buffer, delimiter)
    writer.writerow(header)
    decimal = decimal_sign(delimiter)
    writer.writerows([cell(value, decimal) for value in row] for row in rows)
    return buffer.getvalue()
