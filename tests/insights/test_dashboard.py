"""The marketer's dashboard: who may see it, the numbers behind each chart (as data, table and CSV),
the vendored chart library, and "rescore now"."""

import csv
import io
import re

import pytest
import sqlalchemy as sa
from purchases import buy, refund

from loyalty.extensions import db
from loyalty.insights import services
from loyalty.insights.models import JobRun
from loyalty.points.program import load_program
from tests.support.clock import DEFAULT_NOW
from tests.support.sessions import plant_identity

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(app, staff_id):
    http = app.test_client()
    plant_identity(app, http, f"staff:{staff_id}")
    return http


@pytest.fixture
def marketer(app, factory):
    return signed_in(app, factory.staff("marketer@example.com", "marketer"))


@pytest.fixture
def history(factory, pos):
    """Three members: one buys twice (5,000 + 3,000 less a 1,000 refund), one once, one never."""
    twice, once = factory.member(), factory.member()
    factory.member()
    buy(pos, twice, 100, 5000, lines=[{"sku": "A", "category": "c1", "amount": 2500},
                                      {"sku": "B", "category": "c2", "amount": 2500}])
    refund(pos, buy(pos, twice, 10, 3000), 1000)
    buy(pos, once, 200, 4000)
    buy(pos, None, 5, 999)


def test_only_marketers_and_admins_see_it(app, factory):
    anonymous = app.test_client().get("/marketing/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    cashier = signed_in(app, factory.staff("cashier@example.com", "cashier"))
    assert cashier.get("/marketing/").status_code == 403
    assert cashier.get("/marketing/data.json").status_code == 403
    assert cashier.post("/marketing/rescore").status_code in (400, 403)
    admin = signed_in(app, factory.staff("admin@example.com", "admin"))
    assert admin.get("/marketing/").status_code == 200


def test_the_headline_figures(app, history):
    with app.app_context():
        overview = services.overview(db.session, load_program(db.session), DEFAULT_NOW, services.InsightsSettings())
    assert overview["members"] == 3
    assert overview["active_members"] == 1  # only the first bought in the last 90 days
    assert (overview["buyers"], overview["repeat_buyers"], overview["repeat_purchase_rate"]) == (2, 1, 0.5)
    # 1 point per 1.00 paid: 50 + 30 - 10 reversed + 40 = 110 points, worth 1.10 at 100 points per 1.00.
    assert overview["points_liability"] == 110 and overview["points_liability_minor"] == 110
    assert overview["points_issued"] == 110 and overview["redemption_rate"] == 0.0


def test_the_page_has_every_chart_with_its_table_and_csv(app, marketer, history):
    with app.app_context():
        from loyalty.insights import tasks

        tasks.rescore_all()
    page = marketer.get("/marketing/")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    for chart in ("sales_trend", "tiers", "rfm_segments", "churn_bands", "segment_movement", "top_pairs",
                  "top_category_pairs"):
        assert f'id="canvas-{chart}"' in html and f'id="table-{chart}"' in html
        assert f'href="/marketing/data/{chart}.csv"' in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html and "cdn" not in html.lower()
    assert 'id="fig-members">3<' in html
    assert 'id="rescore"' in html and 'id="rescore-progress"' in html

    with marketer.get("/static/vendor/chartjs/chart.umd.min.js") as library:
        assert library.status_code == 200 and b"Chart.js v4" in library.data
    with marketer.get("/static/js/marketing.js") as script:
        assert script.status_code == 200


def test_csv_downloads_hold_the_charts_numbers(app, marketer, history):
    with app.app_context():
        from loyalty.insights import tasks

        tasks.score_rfm()
    response = marketer.get("/marketing/data/rfm_segments.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))

    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    assert rows[0] == ["segment", "members", "monetary"]
    by_segment = {segment: (int(members), int(monetary)) for segment, members, monetary in rows[1:]}
    assert sum(members for members, _ in by_segment.values()) == 3
    assert by_segment["No Purchases"] == (1, 0)
    assert sum(monetary for _, monetary in by_segment.values()) == 5000 + 2000 + 4000
    assert marketer.get("/marketing/data/nothing.csv").status_code == 404


def test_skus_and_categories_from_a_pos_come_out_of_the_csv_as_text(app, marketer, factory, pos):
    """Issue 12, finding 8: a POS names its SKUs and categories; the "bought together" downloads must
    not turn `=HYPERLINK(...)` or a DDE call into a live formula in the marketer's spreadsheet."""
    skus = ['=HYPERLINK("http://evil.example/","Click")', "@SUM(1+1)"]
    categories = ["+cmd|' /C calc'!A0", "-2+3"]
    member_no = factory.member()
    for days_ago in range(1, 6):
        buy(pos, member_no, days_ago, 2000, lines=[{"sku": sku, "category": category, "amount": 1000}
                                                   for sku, category in zip(skus, categories, strict=True)])
    with app.app_context():
        from loyalty.insights import tasks

        tasks.compute_crosssell()

    for chart, names in (("top_pairs", skus), ("top_category_pairs", categories)):
        response = marketer.get(f"/marketing/data/{chart}.csv")
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert len(rows) == 2, rows
        assert sorted(rows[1][:2]) == sorted("'" + name for name in names)
        assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@", "\t", "\r")
                    or (cell[:1] == "-" and not _is_number(cell))]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_json_matches_the_services(app, marketer, history):
    body = marketer.get("/marketing/data.json").get_json()
    assert body["overview"]["members"] == 3
    assert [row["month"] for row in body["sales_trend"]][-1] == "2026-11"
    assert sum(row["sales"] for row in body["sales_trend"]) == 4  # the anonymous sale counts; the 200-day one is in May
    assert {row["tier"] for row in body["tiers"]} == {"BRONZE", "SILVER", "GOLD"}


def test_rescore_now_runs_the_jobs_and_shows_their_runs(app, marketer, history):
    page = marketer.get("/marketing/").get_data(as_text=True)
    token = CSRF.search(page).group(1)

    response = marketer.post("/marketing/rescore", data={"csrf_token": token})

    assert response.status_code == 302 and "rescore=" in response.headers["Location"]
    with app.app_context():
        if app.config["REDIS_URL"]:  # queued for a worker: be that worker
            from rq import Queue, SimpleWorker

            from loyalty.jobs import redis_connection

            SimpleWorker([Queue("scoring", connection=redis_connection())],
                         connection=redis_connection()).work(burst=True)
        assert [run.status for run in db.session.scalars(sa.select(JobRun).order_by(JobRun.id))] == ["succeeded"] * 3
    jobs = marketer.get("/marketing/jobs.json").get_json()["jobs"]
    assert [(job["job"], job["status"]) for job in jobs] == [("rfm", "succeeded"), ("churn", "succeeded"),
                                                             ("crosssell", "succeeded")]
    followed = marketer.get(response.headers["Location"]).get_data(as_text=True)
    assert "data-rescore-since=" in followed and "succeeded" in followed


def test_rescore_without_a_csrf_token_is_refused(app, marketer):
    assert marketer.post("/marketing/rescore").status_code == 400
