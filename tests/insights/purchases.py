"""Posting the insights tests' hand-built history through the real POS API: sales "n days ago"
(at 01:00 UTC, so n days ago is n UTC days ago from DEFAULT_NOW) and refunds."""

from datetime import timedelta

from tests.support.clock import DEFAULT_NOW

SALE_TIME = DEFAULT_NOW.replace(hour=1)


def at(days_ago: int) -> str:
    return (SALE_TIME - timedelta(days=days_ago)).isoformat()


def buy(pos, member_no, days_ago, amount, external_id=None, lines=None) -> str:
    """Post a sale; returns its external id."""
    response = pos.sale(member_no, amount, occurred_at=at(days_ago), external_id=external_id,
                        **({"lines": lines} if lines else {}))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["external_id"]


def refund(pos, external_id, amount) -> None:
    response = pos.post(f"/transactions/{external_id}/refunds",
                        json={"external_id": f"R-{external_id}-{amount}", "amount": amount})
    assert response.status_code == 201, response.get_json()
