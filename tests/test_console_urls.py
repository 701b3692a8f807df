"""No console URL answers 500 for an id or a page out of range (issue 12, finding 9): an integer in a
path beyond the 64-bit ids the database hands out names nothing (404), and a page, cursor or limit in
a query string beyond any real one is clamped or ignored. Every GET route of the member portal, the
staff console and the marketing console is tried, signed in as someone who may see it."""

import re

import pytest

from tests.support.sessions import plant_identity

CONSOLES = ("/portal", "/staff", "/marketing")
OUT_OF_RANGE = [str(2**63), "99999999999999999999", "1" * 5000]
# Every integer a query string of these pages takes, at and beyond the edge of 64 bits.
HUGE_QUERY = dict.fromkeys(("page", "after", "before", "limit", "cursor", "threshold", "offset"), str(2**63 - 1))
INT_ARGUMENT = re.compile(r"<int(\([^)]*\))?:\w+>")
OTHER_ARGUMENT = re.compile(r"<(\w+(\([^)]*\))?:)?\w+>")


def get_rules(app, prefixes=CONSOLES) -> list[str]:
    return sorted({rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods and rule.rule.startswith(prefixes)})


@pytest.fixture
def browsers(app, factory):
    """A member signed in to the portal, and an admin (who may see every console page)."""
    member_no = factory.member()
    member = app.test_client()
    plant_identity(app, member, f"member:{factory.member_row(member_no).id}")
    admin = app.test_client()
    plant_identity(app, admin, f"staff:{factory.staff('admin@example.com', 'admin')}")
    return {"member": member, "admin": admin, "member_no": member_no}


def browser_for(browsers, path: str):
    return browsers["member"] if path.startswith("/portal") else browsers["admin"]


def test_the_portal_answers_an_id_beyond_64_bits_with_not_found(browsers):
    for value in OUT_OF_RANGE:
        response = browsers["member"].get(f"/portal/transactions/{value}")
        assert response.status_code == 404, (value[:30], response.status_code)


def test_the_portal_clamps_a_page_beyond_the_last(browsers):
    for page in (str(2**63 - 1), str(2**63), "9" * 30, "1" * 5000, "-9223372036854775809", "0"):
        response = browsers["member"].get(f"/portal/history?page={page}")
        assert response.status_code == 200, (page[:30], response.status_code)


def test_every_console_route_with_an_id_answers_not_found_beyond_64_bits(app, browsers):
    rules = [rule for rule in get_rules(app) if INT_ARGUMENT.search(rule)]
    assert rules, "no console route takes an integer"
    for rule in rules:
        for value in OUT_OF_RANGE:
            path = OTHER_ARGUMENT.sub(browsers["member_no"], INT_ARGUMENT.sub(value, rule))
            response = browser_for(browsers, path).get(path)
            assert response.status_code == 404, (rule, value[:30], response.status_code)


def test_every_console_page_takes_huge_query_integers_without_a_server_error(app, browsers):
    for rule in get_rules(app):
        path = OTHER_ARGUMENT.sub(browsers["member_no"], INT_ARGUMENT.sub("1", rule))
        response = browser_for(browsers, path).get(path, query_string=HUGE_QUERY)
        assert response.status_code < 500, (rule, response.status_code)
