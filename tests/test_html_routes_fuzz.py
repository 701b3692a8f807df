"""Fuzzing of the HTML side (issue 12): every GET and POST rule of the app's URL map outside /api/v1
(which tests/invariants/test_schemathesis.py fuzzes from its OpenAPI document), called as the role
that may use it, with malformed path values, query strings and form bodies. Whatever arrives, the
answer is never a server error.

The rules come from `app.url_map`, so a new route is fuzzed without being listed here; one that
cannot be must be named in UNFUZZED with the reason. Requests carry raw bytes as a real server
passes them on (PATH_INFO and QUERY_STRING undecoded, so %ED%A0%80 arrives as the bytes of an
unpaired surrogate and %00 as NUL), and form posts carry the session's valid CSRF token, so they get
past it into the view. Deterministic (derandomized Hypothesis) and bounded: LOYALTY_FUZZ_EXAMPLES
raises the number of generated requests per route for a longer hunt."""

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty import create_app
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import Tier
from loyalty.sales.models import Transaction
from tests.staff.conftest import CSRF_INPUT, staff, staff_password_hash  # noqa: F401  (fixtures)
from tests.support.sessions import plant_identity

# Examples per route and run (each one request); the deterministic path values come on top.
FUZZ_EXAMPLES = int(os.environ.get("LOYALTY_FUZZ_EXAMPLES", "6"))

# Rules not fuzzed here, with the reason.
UNFUZZED = {
    "static": "files from disk, no code of ours",
}
# Who may use the routes under each prefix; anything else is called signed out.
ROLE_OF_PREFIX = {"/portal": "member", "/staff": "cashier", "/marketing": "marketer", "/admin": "admin"}

# Path values, as raw (percent-encoded) URL text: ids beyond 64 bits and just past them, negative,
# not numbers, an unpaired surrogate's UTF-8 bytes, invalid UTF-8, NUL, very long, empty.
MALFORMED_SEGMENTS = ["99999999999999999999", "9223372036854775808", "-1", "0", "abc", "%ED%A0%80", "%FF%FE",
                      "%00", "x" * 3000, "", "%2F"]
# Query and form values, raw as well.
MALFORMED_VALUES = ["-1", "9223372036854775807", "9223372036854775808", "99999999999999999999", "abc", "1e309",
                    "", "a%00b", "%ED%A0%80", "%FF", "x" * 5000, "2026-13-45", "%2F%2Fevil.example", "%5B%5D"]
# Query parameter names the views read, found in their source, so a new one is fuzzed too.
SOURCE_ARG_NAMES = sorted({
    name for path in (Path(__file__).parents[1] / "loyalty").rglob("*.py")
    for name in re.findall(r"request\.(?:args|values)\.get(?:list)?\(\s*\"([A-Za-z_]+)\"", path.read_text())
} | {"page", "q", "next", "lang"})
PATH_ARGUMENT = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every GET and POST rule but /api/v1's and UNFUZZED ones."""
    app = create_app({"TESTING": True, "SECRET_KEY": "routes-only", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    prefix = app.config["OPENAPI_URL_PREFIX"]
    return sorted((rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
                  for method in ("GET", "POST") if method in rule.methods
                  and not rule.rule.startswith(prefix + "/") and rule.endpoint not in UNFUZZED)


ROUTES = _routes()


class _FieldNames(HTMLParser):
    """The names of a page's form fields (input, select, textarea)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag, attrs):
        name = dict(attrs).get("name")
        if tag in ("input", "select", "textarea") and name and name != "csrf_token":
            self.names.add(name)


def field_names(html: str) -> list[str]:
    parser = _FieldNames()
    parser.feed(html)
    return sorted(parser.names)


def role_of(rule: str) -> str | None:
    return next((role for prefix, role in ROLE_OF_PREFIX.items() if rule.startswith(prefix + "/")), None)


class Browser:
    """A test client that sends raw URL bytes, signed in as a role, holding that session's CSRF token."""

    def __init__(self, app, identity: str | None) -> None:
        self.app = app
        self.http = app.test_client()
        plant_identity(app, self.http, identity)
        self.csrf_token = self._csrf_token()

    def _csrf_token(self) -> str:
        for page in ("/portal/", "/staff/", "/marketing/", "/admin/", "/portal/login", "/staff/login"):
            found = CSRF_INPUT.search(self.http.get(page).get_data(as_text=True))
            if found:
                return found.group(1)
        raise AssertionError("no page of this session carries a CSRF token")

    def call(self, method: str, raw_path: str, raw_query: str = "", raw_form: str | None = None):
        """`raw_path` and `raw_query` as percent-encoded URL text, decoded to bytes the way a WSGI server
        hands them over (PATH_INFO as latin-1), not the test client's way (which replaces bad UTF-8)."""
        environ = {"PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"), "QUERY_STRING": raw_query,
                   "REQUEST_URI": raw_path + ("?" + raw_query if raw_query else "")}
        kwargs = {}
        if method == "POST":
            body = "&".join(part for part in (f"csrf_token={self.csrf_token}", raw_form) if part)
            kwargs = {"data": body.encode("latin-1"), "content_type": "application/x-www-form-urlencoded"}
        return self.http.open("/", method=method, environ_overrides=environ, **kwargs)


@pytest.fixture
def known(app, factory, staff):  # noqa: F811  (the fixture imported above)
    """Real values for path arguments, so that some requests get past the lookup into the view."""
    member_no = factory.member()
    client = factory.api_client(scope="manage", name="fuzzed")
    assert client.sale(member_no, 50_000).status_code == 201
    offer = client.post("/offers", json={"name": "Fuzzed", "kind": "amount_off", "value": 1000})
    assert offer.status_code == 201, offer.get_json()
    with app.app_context():
        member_id = db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))
        tier_id = db.session.scalar(sa.select(Tier.id).order_by(Tier.id))
        transaction_id = db.session.scalar(sa.select(Transaction.id).where(Transaction.member_id == member_id))
    return {"member_no": member_no, "member_id": member_id, "staff_id": staff.cashier, "tier_id": tier_id,
            "prefix": client.key[:10], "offer_id": offer.get_json()["id"], "transaction_id": transaction_id,
            "identity": {"member": f"member:{member_id}", "cashier": f"staff:{staff.cashier}",
                                           "marketer": f"staff:{staff.marketer}", "admin": f"staff:{staff.admin}"}}


def fill(rule: str, values: dict[str, str]) -> str:
    return PATH_ARGUMENT.sub(lambda match: values[match.group(1)], rule)


def assert_no_server_error(response, method: str, url: str) -> None:
    assert response.status_code < 500, f"{method} {url[:300]}: {response.status_code}"


raw_value = st.sampled_from(MALFORMED_VALUES) | st.text(max_size=40).map(
    lambda text: "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass")))


@pytest.mark.parametrize(("endpoint", "method", "rule"), ROUTES, ids=[f"{e} {m}" for e, m, _ in ROUTES])
def test_html_route_never_answers_a_server_error(app, known, endpoint, method, rule):
    role = role_of(rule)
    browser = Browser(app, known["identity"].get(role))
    arguments = PATH_ARGUMENT.findall(rule)
    good = {name: str(known.get(name, "1")) for name in arguments}

    # Every malformed value in every path argument, the others real.
    for name in arguments:
        for segment in MALFORMED_SEGMENTS:
            path = fill(rule, {**good, name: segment})
            assert_no_server_error(browser.call(method, path), method, path)

    # The names a page at this URL (or the nearest one above it) submits, for the query and the body.
    names = set(SOURCE_ARG_NAMES)
    page = fill(rule, good)
    while page:
        shown = browser.call("GET", page)
        if shown.status_code == 200 and shown.mimetype == "text/html":
            names.update(field_names(shown.get_data(as_text=True)))
            break
        page = page.rstrip("/").rpartition("/")[0]
    names = sorted(names)

    # Every malformed value in every query parameter and form field at once.
    path = fill(rule, good)
    for value in MALFORMED_VALUES:
        fields = "&".join(f"{name}={value}" for name in names)
        response = browser.call(method, path, fields, fields if method == "POST" else None)
        assert_no_server_error(response, method, f"{path}?{fields}")

    pairs = st.lists(st.tuples(st.sampled_from(names), raw_value), max_size=6)

    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(segments=st.fixed_dictionaries({name: st.sampled_from([good[name], *MALFORMED_SEGMENTS])
                                           for name in arguments}),
           query=pairs, form=pairs)
    def fuzz(segments, query, form):
        path = fill(rule, segments)
        raw_query = "&".join(f"{name}={value}" for name, value in query)
        raw_form = "&".join(f"{name}={value}" for name, value in form) if method == "POST" else None
        response = browser.call(method, path, raw_query, raw_form)
        assert_no_server_error(response, method, f"{path}?{raw_query} {raw_form or ''}")

    fuzz()


# --- what the fuzzing found ---------------------------------------------------------------------------

def test_nul_in_a_query_string_or_a_form_field_is_a_bad_request(app, known):
    """/admin/audit?action=%00 was a 500 on PostgreSQL (text cannot hold NUL): refused for every page
    before a view reads it, in values and names alike."""
    admin = Browser(app, known["identity"]["admin"])
    assert admin.call("GET", "/admin/audit", "action=%00").status_code == 400
    assert admin.call("GET", "/admin/staff", "a%00=1").status_code == 400
    assert admin.call("POST", "/admin/stores", raw_form="code=S9&name=a%00b&timezone=UTC").status_code == 400
    assert admin.call("GET", "/admin/audit", "action=store.").status_code == 200
