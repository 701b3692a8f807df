"""Coupon codes: unique, grouped for reading aloud, normalised, and every single-character typo of a
generated code refused by its check character alone."""

import random
import re

from loyalty.campaigns import codes

LOOK_ALIKES = "01IOL"


def test_alphabet_is_31_unambiguous_characters():
    assert len(codes.ALPHABET) == 31 == len(set(codes.ALPHABET))
    assert not set(LOOK_ALIKES) & set(codes.ALPHABET)
    assert all(codes.MODULUS % divisor for divisor in range(2, codes.MODULUS))  # prime


def test_100000_codes_are_unique_well_formed_and_pass_their_check():
    generated = codes.generate_codes(100_000)

    assert len(generated) == len(set(generated)) == 100_000
    assert all(codes.is_generated_shape(code) and codes.has_valid_check(code) for code in generated)
    # Random, not patterned: every alphabet character turns up in every body position.
    for position in range(codes.BODY_LENGTH):
        assert {code[position] for code in generated[:5000]} == set(codes.ALPHABET)


def test_every_single_character_substitution_is_refused_by_the_check_character():
    sample = codes.generate_codes(500)
    tried = 0
    for code in sample:
        for position in range(codes.CODE_LENGTH):
            for replacement in codes.ALPHABET + LOOK_ALIKES:
                if replacement == code[position]:
                    continue
                typo = code[:position] + replacement + code[position + 1:]
                assert not codes.has_valid_check(typo), (code, typo)
                tried += 1
    assert tried == 500 * codes.CODE_LENGTH * (len(codes.ALPHABET) - 1 + len(LOOK_ALIKES))


def test_every_transposition_is_refused_too():
    for code in codes.generate_codes(500):
        for first in range(codes.CODE_LENGTH):
            for second in range(first + 1, codes.CODE_LENGTH):
                if code[first] == code[second]:
                    continue
                swapped = list(code)
                swapped[first], swapped[second] = swapped[second], swapped[first]
                assert not codes.has_valid_check("".join(swapped)), (code, first, second)


def test_a_naive_check_would_fail_this_test():
    """The typo test can fail: with a plain sum (all weights 1) transpositions slip through, and with a
    composite modulus some substitutions do. Here, the weighted mod-31 check character is what holds."""
    rng = random.Random(4)
    body = "".join(rng.choice(codes.ALPHABET) for _ in range(codes.BODY_LENGTH))
    code = body + codes.check_character(body)
    plain_sum = sum(codes.ALPHABET.index(char) for char in code) % 31
    swapped = code[1] + code[0] + code[2:]
    assert sum(codes.ALPHABET.index(char) for char in swapped) % 31 == plain_sum
    assert not codes.has_valid_check(swapped) or swapped == code


def test_codes_read_in_groups_and_normalise_from_what_people_type():
    code = codes.generate_code()
    shown = codes.display(code)

    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", shown)
    assert codes.normalize(shown) == code
    assert codes.normalize(f"  {shown.lower()[:7]} {shown.lower()[7:]} ") == code
    assert codes.normalize(shown.replace("-", " ")) == code
    assert codes.display("SUMMER10") == "SUMMER10"


def test_chosen_generic_codes_never_take_the_generated_length():
    assert codes.is_acceptable_generic("SUMMER10")
    assert codes.is_acceptable_generic("WELCOME2026")
    assert not codes.is_acceptable_generic("HAPPYNEWYEAR")  # 12 long: reserved for generated codes
    assert not codes.is_acceptable_generic("ABC")
    assert not codes.is_acceptable_generic("SUMMER-10")  # normalise first
    assert not codes.is_acceptable_generic("X" * 33)
