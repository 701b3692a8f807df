"""The rules about a sale are the service's (sales.services), whoever calls: the API's schema, the
staff console and the demo loader all hand it a typed Sale, and none of them is trusted to have
checked the sale's own figures."""

from datetime import timedelta

import pytest

from loyalty.auth.models import ApiClient
from loyalty.errors import InvalidFields
from loyalty.points.program import load_program
from loyalty.sales.models import Transaction
from loyalty.sales.services import RecordedSale, record_refund, record_sales
from loyalty.sales.values import BasketLine, Refund, Sale


@pytest.fixture
def till(factory, session):
    return session.get(ApiClient, factory.api_client().client_id)


def a_sale(clock, **figures) -> Sale:
    return Sale(**{"external_id": "S-1", "occurred_at": clock(), "currency": "CNY", "amount": 12800,
                   "lines": (BasketLine(sku="TEA", amount=12800),), **figures})


def record(session, till, clock, sale: Sale):
    [result] = record_sales(session, load_program(session), till, [sale], clock())
    return result


def test_a_subtotal_below_the_amount_is_refused(session, till, clock):
    result = record(session, till, clock, a_sale(clock, subtotal=12799))

    assert isinstance(result, InvalidFields)
    assert result.errors == {"subtotal": ["Must not be less than amount."]}
    assert session.query(Transaction).count() == 0


def test_negative_points_to_redeem_are_refused(session, till, clock):
    result = record(session, till, clock, a_sale(clock, points_redeemed=-5))

    assert isinstance(result, InvalidFields) and set(result.errors) == {"points_redeemed"}


def test_a_sale_from_the_future_is_refused_beyond_the_tolerance(session, till, clock, app):
    tolerance = app.config["SALE_FUTURE_TOLERANCE"]

    late = record(session, till, clock, a_sale(clock, occurred_at=clock() + tolerance + timedelta(seconds=1)))
    within = record(session, till, clock, a_sale(clock, external_id="S-2", occurred_at=clock() + tolerance))

    assert isinstance(late, InvalidFields)
    assert late.errors == {"occurred_at": ["Must not be more than 5 minutes in the future."]}
    assert isinstance(within, RecordedSale)


def test_every_broken_figure_is_named_at_once(session, till, clock):
    result = record(session, till, clock, a_sale(clock, subtotal=1, occurred_at=clock() + timedelta(days=1)))

    assert set(result.errors) == {"subtotal", "occurred_at"}


def test_a_refund_from_the_future_is_refused(session, till, clock):
    assert isinstance(record(session, till, clock, a_sale(clock)), RecordedSale)

    with pytest.raises(InvalidFields) as refused:
        record_refund(session, load_program(session), till, "S-1",
                      Refund(external_id="R-1", amount=100, occurred_at=clock() + timedelta(hours=1)), clock())

    assert refused.value.errors == {"occurred_at": ["Must not be more than 5 minutes in the future."]}
