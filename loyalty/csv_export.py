"""The one way the app writes CSV (the dashboard's chart downloads, a coupon batch's codes).

SKUs, categories and names come from POS systems and members, and a marketer opens the download in a
spreadsheet: a cell that starts with = + - @, a tab or a carriage return would run there as a formula
(`=HYPERLINK(...)`, `+cmd|...` DDE). Such text is written with a leading single quote, as OWASP's
"CSV Injection" advises, so the spreadsheet shows it as text. Numbers are written as they are.
"""

import csv
import io
from collections.abc import Iterable

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """`value` as a spreadsheet will read it safely: text that would be a formula, quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def line(values: Iterable) -> str:
    """One record, for a download streamed line by line. Lines end in CRLF (RFC 4180), which also
    makes the writer quote a cell holding a lone CR or LF, so no cell can start a row of its own."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([cell(value) for value in values])
    return buffer.getvalue()


def table(columns: Iterable, rows: Iterable[Iterable]) -> str:
    """A header line and then one line per row."""
    return line(columns) + "".join(line(row) for row in rows)

