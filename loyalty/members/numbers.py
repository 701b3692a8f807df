"""Member numbers: nine random digits and a Damm check digit. Damm catches every single wrong digit
and every swap of two neighbours, so a typo at the till is refused instead of finding somebody else
(Luhn misses 09 <-> 90). Random rather than sequential, so numbers do not reveal the member count."""

import secrets

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3), (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6), (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7), (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_check_digit(digits: str) -> str:
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return str(interim)


def is_valid_member_no(candidate: str) -> bool:
    return (
        len(candidate) == 10 and candidate.isdigit() and candidate[0] != "0"
        and damm_check_digit(candidate) == "0"
    )


def random_member_no() -> str:
    body = str(secrets.randbelow(900_000_000) + 100_000_000)
    return body + damm_check_digit(body)
