"""Coupon codes: random, read aloud in groups (`C7K2-9QXD-PM4F`), and typo-proof.

A generated code is 11 random characters and one check character from a 31-character alphabet
without the look-alikes 0/O, 1/I/L. 31 is prime, so the alphabet is the field GF(31) and the check is

    sum(position * value for position, value in enumerate(code, start=1)) == 0  (mod 31)

Changing the character at position p from value a to b changes the sum by p * (b - a); with p in
1..12 and b != a both factors are non-zero modulo a prime, so their product is too: every
single-character substitution is refused by the check alone, before any database lookup. Swapping the
characters at positions p and q changes the sum by (p - q) * (a - b), non-zero for the same reason, so
every transposition (adjacent or not) is refused too. A typo outside the alphabet (an O for a 0) is
refused because the character is not a code character at all.

11 random characters carry 11 * log2(31) = 54.5 bits from `secrets`: with a million live codes, a guess
finds one with odds of about 1 in 2.5e10, before rate limits.

Generic codes chosen by marketers (`SUMMER10`) are any other length of A-Z and 0-9: never 12, so no
single-character typo of a generated code can ever be a chosen code.
"""

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MODULUS = len(ALPHABET)  # 31, prime: what makes the guarantees above hold
BODY_LENGTH = 11
CODE_LENGTH = BODY_LENGTH + 1
GROUP = 4
_VALUE = {char: value for value, char in enumerate(ALPHABET)}
# Random bytes below this are used (value % 31 is then uniform); the rest are drawn again.
_BYTE_LIMIT = 256 - 256 % MODULUS
_SEPARATORS = re.compile(r"[\s\-_]+")
GENERIC_CODE = re.compile(r"^[A-Z0-9]{4,32}$")

assert MODULUS == 31 and len(set(ALPHABET)) == MODULUS


def check_character(body: str) -> str:
    """The character that makes `body + check` sum to zero under the positional weights."""
    total = sum(position * _VALUE[char] for position, char in enumerate(body, start=1))
    # Solve total + CODE_LENGTH * c == 0 (mod 31) for c.
    return ALPHABET[(-total * pow(CODE_LENGTH, -1, MODULUS)) % MODULUS]


def is_generated_shape(code: str) -> bool:
    """Twelve alphabet characters: a generated code, right or mistyped."""
    return len(code) == CODE_LENGTH and all(char in _VALUE for char in code)


def has_valid_check(code: str) -> bool:
    if not is_generated_shape(code):
        return False
    return sum(position * _VALUE[char] for position, char in enumerate(code, start=1)) % MODULUS == 0


def generate_code() -> str:
    return generate_codes(1)[0]


def generate_codes(count: int) -> list[str]:
    """`count` fresh codes (normalised form) from the OS's CSPRNG, distinct among themselves."""
    codes: set[str] = set()
    while len(codes) < count:
        need = count - len(codes)
        raw = secrets.token_bytes(need * BODY_LENGTH * 11 // 10 + 16)
        values = [ALPHABET[byte % MODULUS] for byte in raw if byte < _BYTE_LIMIT]
        for start in range(0, len(values) - BODY_LENGTH + 1, BODY_LENGTH):
            body = "".join(values[start:start + BODY_LENGTH])
            codes.add(body + check_character(body))
            if len(codes) == count:
                break
    return list(codes)


def normalize(raw: str) -> str:
    """What is stored and looked up: upper case, without spaces, dashes or underscores."""
    return _SEPARATORS.sub("", raw).upper()


def display(code: str) -> str:
    """Generated codes in groups of four for reading aloud; chosen codes as they are."""
    if is_generated_shape(code):
        return "-".join(code[start:start + GROUP] for start in range(0, CODE_LENGTH, GROUP))
    return code


def is_acceptable_generic(code: str) -> bool:
    """A marketer's chosen code: 4-32 of A-Z and 0-9, and not the generated codes' length."""
    return bool(GENERIC_CODE.match(code)) and len(code) != CODE_LENGTH
