"""The marketing console's offers pages: who may use them, creating and editing offers through the form
(yuan typed, fen stored; times typed in the store's zone, UTC stored), bulk issue as a job with a
progress endpoint, the batch's CSV, and an offer's redemptions and cost."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from loyalty.auth.models import AuditEvent
from loyalty.campaigns import batches, codes, services, tasks
from loyalty.campaigns.models import Coupon, CouponBatch, Offer
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import Tier
from tests.campaigns.test_batches_and_wallets import run_queued_jobs
from tests.support.portal import use_cheap_password_hashing
from tests.support.sessions import plant_identity

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
OFFER = "{offer}"
BATCH = "{batch}"

# A valid submission of each form, so that a refusal in the role tests is about who asks.
NEW_OFFER = {"name": "Ten off", "kind": "amount_off", "value": "10.00"}
EDIT_OFFER = {"name": "Ten off, renamed"}
ROUTES = [
    ("GET", "/marketing/offers/", None),
    ("GET", "/marketing/offers/new", None),
    ("POST", "/marketing/offers/new", NEW_OFFER),
    ("GET", f"/marketing/offers/{OFFER}", None),
    ("GET", f"/marketing/offers/{OFFER}/edit", None),
    ("POST", f"/marketing/offers/{OFFER}/edit", EDIT_OFFER),
    ("POST", f"/marketing/offers/{OFFER}/batches", {"target": "codes", "count": "3"}),
    ("GET", f"/marketing/offers/batches/{BATCH}", None),
    ("GET", f"/marketing/offers/batches/{BATCH}/progress.json", None),
    ("GET", f"/marketing/offers/batches/{BATCH}/coupons.csv", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


class Browser:
    """A test client signed in by session (as the sign-in views leave it), reading the CSRF token from
    a page of its own session as a browser would."""

    def __init__(self, app, identity: str | None = None):
        self.http = app.test_client()
        plant_identity(app, self.http, identity)

    def token(self) -> str:
        # The sign-in page renders a form for anyone, so any session can get its token there.
        page = self.http.get("/staff/login").get_data(as_text=True)
        return CSRF_INPUT.search(page).group(1)

    def get(self, path, **kwargs):
        return self.http.get(path, **kwargs)

    def post(self, path, data=None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.http.post(path, data=data, **kwargs)


@pytest.fixture
def people(app, factory):
    staff = {role: factory.staff(f"{role}@example.com", role) for role in ("marketer", "admin", "cashier")}
    member_no = factory.member()
    member_id = factory.member_row(member_no).id
    return {**{role: f"staff:{staff_id}" for role, staff_id in staff.items()}, "member": f"member:{member_id}"}


@pytest.fixture
def marketer(app, people):
    return Browser(app, people["marketer"])


@pytest.fixture
def offer_id(campaigns):
    return campaigns.offer(name="Welcome 10", value=1000, valid_days=30)["id"]


@pytest.fixture
def batch_id(app, offer_id):
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer_id), count=2,
                                     now=app.config["CLOCK"]())
        db.session.commit()
        tasks.issue_batch(batch.id)
        return batch.id


def offers(app) -> list[Offer]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(Offer).order_by(Offer.id)))
        db.session.expunge_all()
        return found


def call(browser, method, path, data, offer_id, batch_id):
    path = path.replace(OFFER, str(offer_id)).replace(BATCH, str(batch_id))
    return browser.get(path) if method == "GET" else browser.post(path, data)


# --- who may use the pages ---------------------------------------------------------------------

@pytest.mark.parametrize("role", ["marketer", "admin"])
@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=ROUTE_IDS)
def test_marketers_and_admins_may(app, people, offer_id, batch_id, role, method, path, data):
    response = call(Browser(app, people[role]), method, path, data, offer_id, batch_id)
    if method == "GET":
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    else:
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        assert response.location.startswith("/marketing/offers/")


@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=ROUTE_IDS)
def test_cashiers_may_not(app, people, offer_id, batch_id, method, path, data):
    response = call(Browser(app, people["cashier"]), method, path, data, offer_id, batch_id)
    assert response.status_code == 403
    assert len(offers(app)) == 1


@pytest.mark.parametrize("who", ["anonymous", "member"])
@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=ROUTE_IDS)
def test_anyone_else_is_sent_to_staff_sign_in(app, people, offer_id, batch_id, who, method, path, data):
    browser = Browser(app, people.get(who))
    response = call(browser, method, path, data, offer_id, batch_id)
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")
    assert [offer.name for offer in offers(app)] == ["Welcome 10"]


@pytest.mark.parametrize(("path", "data"), [(path, data) for method, path, data in ROUTES if method == "POST"],
                         ids=[path for method, path, _ in ROUTES if method == "POST"])
@pytest.mark.parametrize("token", [None, "forged-token"])
def test_forms_need_their_csrf_token(app, marketer, offer_id, batch_id, path, data, token):
    form = {**data, **({"csrf_token": token} if token else {})}
    response = marketer.post(path.replace(OFFER, str(offer_id)), form, csrf=False)
    assert response.status_code == 400
    assert [offer.name for offer in offers(app)] == ["Welcome 10"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponBatch)) == 1


# --- creating and editing offers ---------------------------------------------------------------

def test_create_an_offer_with_every_field(app, marketer, people):
    response = marketer.post("/marketing/offers/new", {
        "name": "Spring: 10.50 off", "kind": "amount_off", "value": "10.50", "min_spend": "99.9",
        "max_discount": "", "skus": "A1, B2，C3 A1", "categories": "", "valid_from": "2026-12-01T00:00",
        "valid_until": "2026-12-31T23:30", "valid_days": "7", "tiers": ["SILVER", "GOLD"],
        "per_member_limit": "2", "budget_count": "100", "budget_amount": "500.00", "stackable": "y",
    })

    [offer] = offers(app)
    assert response.status_code == 302 and response.location == f"/marketing/offers/{offer.id}"
    assert (offer.name, offer.kind, offer.value, offer.min_spend, offer.max_discount) == \
        ("Spring: 10.50 off", "amount_off", 1050, 9990, None)
    assert (offer.skus, offer.categories, offer.tiers) == (["A1", "B2", "C3"], [], ["SILVER", "GOLD"])
    # Typed in the store's zone (Asia/Shanghai, UTC+8), stored in UTC.
    assert offer.valid_from == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert offer.valid_until == datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    assert (offer.valid_days, offer.per_member_limit, offer.budget_count, offer.budget_amount, offer.stackable) == \
        (7, 2, 100, 50000, True)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "offer.create"))
        assert f"staff:{event.staff_user_id}" == people["marketer"]

    page = marketer.get(response.location).get_data(as_text=True)
    assert "Spring: 10.50 off" in page and "Offer “Spring: 10.50 off” created." in page
    assert "Spend at least CN¥99.90" in page and "On products: A1, B2, C3" in page


@pytest.mark.parametrize(("kind", "value", "stored"), [
    ("percent_off", "15", 15), ("bonus_points", "500", 500), ("points_multiplier", "200", 200),
])
def test_other_kinds_take_their_own_value(app, marketer, kind, value, stored):
    response = marketer.post("/marketing/offers/new", {"name": kind, "kind": kind, "value": value})
    assert response.status_code == 302
    [offer] = offers(app)
    assert (offer.kind, offer.value) == (kind, stored)


def test_free_item_names_its_skus(app, marketer):
    refused = marketer.post("/marketing/offers/new", {"name": "Free coffee", "kind": "free_item", "value": ""})
    assert refused.status_code == 422
    assert "A free item needs the SKUs it makes free." in refused.get_data(as_text=True)
    assert marketer.post("/marketing/offers/new",
                         {"name": "Free coffee", "kind": "free_item", "skus": "COFFEE-S"}).status_code == 302
    [offer] = offers(app)
    assert (offer.kind, offer.value, offer.skus) == ("free_item", 0, ["COFFEE-S"])


@pytest.mark.parametrize(("form", "message"), [
    ({"kind": "amount_off", "value": "12.345"}, "Enter an amount in yuan, like 128.50 (at most two decimals)."),
    ({"kind": "amount_off", "value": "1e3"}, "Enter an amount in yuan"),
    ({"kind": "amount_off", "value": ""}, "This field is required."),
    ({"kind": "percent_off", "value": "150"}, "A whole number from 1 to 100."),
    ({"kind": "points_multiplier", "value": "100"}, "A whole number from 101 to 10000."),
    ({"kind": "bonus_points", "value": "5", "budget_amount": "100"}, "Only for money discounts."),
    ({"kind": "amount_off", "value": "5", "min_spend": "-1"}, "Enter an amount in yuan"),
    ({"kind": "amount_off", "value": "5", "valid_from": "2026-12-02T00:00", "valid_until": "2026-12-01T00:00"},
     "Must be after the start."),
    ({"kind": "amount_off", "value": "5", "tiers": ["PLATINUM"]}, "is not a valid choice"),
    ({"kind": "cashback", "value": "5"}, "Not a valid choice"),
])
def test_bad_offers_are_refused_with_the_reason(app, marketer, form, message):
    response = marketer.post("/marketing/offers/new", {"name": "Bad", **form})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert offers(app) == []


def test_edit_changes_only_what_may_change(app, marketer, campaigns, offer_id):
    page = marketer.get(f"/marketing/offers/{offer_id}/edit").get_data(as_text=True)
    assert 'value="Welcome 10"' in page and 'name="kind"' not in page and 'name="value"' not in page

    response = marketer.post(f"/marketing/offers/{offer_id}/edit", {
        "name": "Welcome 10 (winter)", "min_spend": "50", "budget_count": "20", "valid_days": "30",
        "valid_until": "2027-01-31T12:00", "kind": "percent_off", "value": "99",
    })

    assert response.status_code == 302 and response.location == f"/marketing/offers/{offer_id}"
    offer = campaigns.offer_row(offer_id)
    assert (offer.name, offer.kind, offer.value, offer.min_spend, offer.budget_count) == \
        ("Welcome 10 (winter)", "amount_off", 1000, 5000, 20)
    assert offer.valid_until == datetime(2027, 1, 31, 4, 0, tzinfo=UTC)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "offer.update"))
        assert set(event.after) == {"offer_id", "name", "min_spend", "budget_count", "valid_until"}


def test_the_edit_form_shows_stored_values_as_typed(marketer, campaigns):
    offer = campaigns.offer(name="Shown", value=1234, min_spend=10000, max_discount=99, skus=["A", "B"],
                            valid_from="2026-12-01T01:30:45Z", tiers=["GOLD"], budget_amount=123456789)
    page = marketer.get(f"/marketing/offers/{offer['id']}/edit").get_data(as_text=True)
    for shown in ('value="100.00"', 'value="0.99"', 'value="A, B"', 'value="2026-12-01T09:30"',
                  'value="1234567.89"'):
        assert shown in page, shown
    assert re.search(r'<input checked [^>]*value="GOLD"', page)
    assert not re.search(r'<input checked [^>]*value="SILVER"', page)
    # Saving it untouched changes nothing, not even the seconds of the start.
    marketer.post(f"/marketing/offers/{offer['id']}/edit", {
        "name": "Shown", "min_spend": "100.00", "max_discount": "0.99", "skus": "A, B",
        "valid_from": "2026-12-01T09:30", "tiers": ["GOLD"], "budget_amount": "1234567.89"})
    assert campaigns.offer_row(offer["id"]).valid_from == datetime(2026, 12, 1, 1, 30, 45, tzinfo=UTC)


def test_a_budget_below_what_is_spent_is_refused(marketer, campaigns, factory, pos, offer_id):
    for _ in range(2):
        member_no = factory.member()
        code = campaigns.personal(offer_id, member_no)
        assert pos.sale(member_no, 9000, subtotal=10000, coupons=[code]).status_code == 201

    response = marketer.post(f"/marketing/offers/{offer_id}/edit", {"name": "Welcome 10", "budget_count": "1"})

    assert response.status_code == 422
    assert "Already 2 redeemed: the budget cannot be lower." in response.get_data(as_text=True)
    assert campaigns.offer_row(offer_id).budget_count is None


# --- batches -----------------------------------------------------------------------------------

def test_issue_a_batch_of_codes_with_progress_and_csv(app, marketer, campaigns, offer_id):
    response = marketer.post(f"/marketing/offers/{offer_id}/batches", {"target": "codes", "count": "250"})

    assert response.status_code == 302
    batch_page = response.location
    batch_id = int(re.fullmatch(r"/marketing/offers/batches/(\d+)", batch_page).group(1))
    progress_url = f"/marketing/offers/batches/{batch_id}/progress.json"
    if app.config["REDIS_URL"]:
        # Queued for a worker: the page has progress to show before any coupon exists.
        assert marketer.get(progress_url).get_json()["status"] == "queued"
        with app.app_context():
            run_queued_jobs(app)
    page = marketer.get(batch_page).get_data(as_text=True)
    assert f'data-progress-url="{progress_url}"' in page and 'id="batch-progress"' in page
    progress = marketer.get(progress_url)
    assert progress.headers["Cache-Control"] == "no-store"
    assert progress.get_json() == {
        "id": batch_id, "status": "done", "status_label": "done", "issued": 250, "requested": 250, "error": None,
        "csv_url": f"/marketing/offers/batches/{batch_id}/coupons.csv"}

    download = marketer.get(f"/marketing/offers/batches/{batch_id}/coupons.csv")
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == f'attachment; filename="offer-{offer_id}-batch-{batch_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 250 and len({row["code"] for row in rows}) == 250
    assert all(codes.has_valid_check(codes.normalize(row["code"])) for row in rows)
    assert {(row["member_no"], row["status"], row["uses_left"]) for row in rows} == {("", "issued", "1")}
    assert campaigns.get_offer(offer_id)["issued_count"] == 250
    assert f"/marketing/offers/batches/{batch_id}/coupons.csv" in \
        marketer.get(f"/marketing/offers/{offer_id}").get_data(as_text=True)


def test_issue_one_coupon_to_each_member_of_a_tier(app, marketer, factory, pos, offer_id):
    gold = [factory.member() for _ in range(3)]
    bronze = factory.member()
    with app.app_context():
        gold_tier = db.session.scalar(sa.select(Tier).where(Tier.code == "GOLD"))
        db.session.execute(sa.update(Member).where(Member.member_no.in_(gold)).values(tier_id=gold_tier.id))
        db.session.execute(sa.update(Member).where(Member.member_no == gold[2]).values(status="suspended"))
        db.session.commit()
        gold_tier_id = gold_tier.id

    response = marketer.post(f"/marketing/offers/{offer_id}/batches", {"target": "tier", "tier": str(gold_tier_id)})
    assert response.status_code == 302
    with app.app_context():
        run_queued_jobs(app)
    batch_id = int(response.location.rsplit("/", 1)[1])

    rows = list(csv.DictReader(io.StringIO(
        marketer.get(f"/marketing/offers/batches/{batch_id}/coupons.csv").get_data(as_text=True))))
    assert sorted(row["member_no"] for row in rows) == sorted(gold[:2])
    for row in rows:
        wallet = pos.get(f"/members/{row['member_no']}/coupons").get_json()["data"]
        assert [coupon["code"] for coupon in wallet] == [row["code"]]
    assert pos.get(f"/members/{bronze}/coupons").get_json()["data"] == []


def test_a_batch_needs_a_size_or_a_tier_with_members(app, marketer, offer_id):
    with app.app_context():
        silver = db.session.scalar(sa.select(Tier.id).where(Tier.code == "SILVER"))
    for form, message in [({"target": "codes", "count": ""}, "How many codes?"),
                          ({"target": "codes", "count": "0"}, "Number must be between 1 and 1000000."),
                          ({"target": "tier", "tier": "999"}, "Choose a tier."),
                          ({"target": "tier", "tier": str(silver)}, "No active member holds this tier.")]:
        response = marketer.post(f"/marketing/offers/{offer_id}/batches", form)
        assert response.status_code == 422, form
        assert message in response.get_data(as_text=True), form
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CouponBatch)) == 0


def test_an_ended_offer_issues_no_batch(app, marketer, campaigns, clock):
    ended = campaigns.offer(valid_until="2026-11-23T00:00:00Z")["id"]
    clock.advance(days=2)
    assert "no more coupons can be issued" in marketer.get(f"/marketing/offers/{ended}").get_data(as_text=True)
    response = marketer.post(f"/marketing/offers/{ended}/batches", {"target": "codes", "count": "5"})
    assert response.status_code == 422
    assert "This offer has ended: no more coupons can be issued." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 0


def test_pages_of_offers_and_redemptions(marketer, campaigns, offer_id):
    older = [campaigns.offer(name=f"Offer {number}")["id"] for number in range(3)]
    assert "Offer 2" in marketer.get(f"/marketing/offers/?after={older[2] + 1}").get_data(as_text=True)
    page = marketer.get(f"/marketing/offers/?after={older[1]}").get_data(as_text=True)
    assert "Offer 0" in page and "Welcome 10" in page and "Offer 1" not in page and "Offer 2" not in page
    for cursor in ("x", "-1", str(2**63), "9" * 30):
        assert marketer.get(f"/marketing/offers/?after={cursor}").status_code == 200, cursor
        assert marketer.get(f"/marketing/offers/{offer_id}?before={cursor}").status_code == 200, cursor


def test_unknown_offers_and_batches_are_404(marketer):
    for path in ("/marketing/offers/999", "/marketing/offers/999/edit", "/marketing/offers/batches/999",
                 "/marketing/offers/batches/999/progress.json", "/marketing/offers/batches/999/coupons.csv",
                 f"/marketing/offers/{2**63}"):
        assert marketer.get(path).status_code == 404, path


# --- the list, redemptions and cost ------------------------------------------------------------

def test_list_and_detail_show_issued_redeemed_and_cost(app, marketer, campaigns, factory, pos):
    percent = campaigns.offer(name="Fifteen percent", kind="percent_off", value=15, max_discount=5000)["id"]
    unused = campaigns.offer(name="Nobody used me", budget_count=50)["id"]
    campaigns.generic(unused, limit=10, code="SPRING26")
    buyers = [factory.member() for _ in range(2)]
    used = [campaigns.personal(percent, member_no) for member_no in buyers]
    campaigns.personal(percent, factory.member())
    pos.sale(buyers[0], 8500, subtotal=10000, coupons=[used[0]], external_id="S-A")
    pos.sale(buyers[1], 34000, subtotal=40000, coupons=[used[1]], external_id="S-B")  # 15% capped at 50.00
    assert pos.post("/transactions/S-B/refunds", json={"external_id": "R-B", "amount": 34000}).status_code == 201

    listing = marketer.get("/marketing/offers/").get_data(as_text=True)
    row = re.search(rf'<tr id="offer-{percent}">(.*?)</tr>', listing, re.S).group(1)
    assert "Fifteen percent" in row and "15% off, at most CN¥50.00" in row
    assert re.search(r'class="num issued">3<', row) and re.search(r'class="num redeemed">1<', row)
    assert 'class="num cost">CN¥15.00<' in row  # the refunded sale gave its discount back
    other = re.search(rf'<tr id="offer-{unused}">(.*?)</tr>', listing, re.S).group(1)
    assert 'class="num issued">1<' in other and "of 50" in other and "CN¥0.00" in other

    detail = marketer.get(f"/marketing/offers/{percent}").get_data(as_text=True)
    assert 'id="fig-issued">3<' in detail and 'id="fig-redeemed">1<' in detail and 'id="fig-cost">CN¥15.00<' in detail
    table = re.search(r'<table id="redemption-list">(.*?)</table>', detail, re.S).group(1)
    assert used[0] in table and used[1] in table and buyers[0] in table and "S-A" in table
    assert "CN¥15.00" in table and "CN¥50.00" in table
    assert table.count('class="reversed"') == 1 and "given back: sale refunded" in table


def test_dashboard_links_to_offers(marketer):
    assert 'href="/marketing/offers/"' in marketer.get("/marketing/").get_data(as_text=True)
    assert 'href="/marketing/"' in marketer.get("/marketing/offers/").get_data(as_text=True)


def test_pages_render_in_chinese(marketer, offer_id, batch_id):
    chinese = {"Accept-Language": "zh-CN"}
    for path in ("/marketing/offers/", "/marketing/offers/new", f"/marketing/offers/{offer_id}",
                 f"/marketing/offers/{offer_id}/edit", f"/marketing/offers/batches/{batch_id}"):
        page = marketer.get(path, headers=chinese).get_data(as_text=True)
        assert '<html lang="zh-Hans">' in page and "优惠" in page, path
