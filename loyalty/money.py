"""Money: integer minor units everywhere (fen for CNY); never a float.

Parsing what a person typed into minor units, and writing minor units back as plain decimal text,
happen here and nowhere else. Showing an amount in the reader's locale and currency is
`loyalty.i18n.money`.
"""

import re
from decimal import Decimal

from loyalty.errors import ValidationFailed

# The largest amount anything may hold, in minor units: far beyond any till, small enough for every
# integer column (BigInteger) and for sums of many of them.
MAX_MONEY = 10**12
# Yuan with at most two decimals (fen); the ceiling keeps far inside the API's money range.
YUAN_AMOUNT = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


def yuan_to_fen(text: str) -> int:
    """Parse a typed amount in yuan ("128", "128.5", "128.50") into integer fen, exactly: no float
    ever holds the value. More than two decimals, signs, exponents and separators are refused rather
    than rounded, so what the cashier typed is what is recorded."""
    cleaned = (text or "").strip().removeprefix("¥").strip()
    if not YUAN_AMOUNT.fullmatch(cleaned):
        raise ValidationFailed("not an amount in yuan",
                               errors={"amount": ["Enter an amount like 128.50 (at most two decimals)."]})
    return int(Decimal(cleaned) * 100)


def fen_to_yuan(fen: int) -> str:
    """Integer fen shown as yuan with two decimals ("12800" → "128.00"), by integer arithmetic."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{part:02d}"
