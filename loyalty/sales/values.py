"""A sale and a refund as the sale path takes them: typed values that the front ends build (the API's
schema from JSON, the staff console from its form) and `sales.services` checks and records. Money in
integer minor units, times timezone-aware UTC."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BasketLine:
    """One line of a basket: `amount` is what the line cost; `unit_price` defaults to it."""

    sku: str
    amount: int
    category: str | None = None
    quantity: int = 1
    unit_price: int | None = None

    def row(self, line_no: int) -> dict:
        """The line as `transaction_lines` holds it (and as the coupon rules read a basket)."""
        return {"line_no": line_no, "sku": self.sku, "category": self.category, "quantity": self.quantity,
                "unit_price": self.amount if self.unit_price is None else self.unit_price, "amount": self.amount}


@dataclass(frozen=True)
class Sale:
    """A sale to record. `amount` is what was paid after every discount, `subtotal` the basket before
    coupon and points discounts (None: the same as `amount`). `member_code` is a card token, member
    number or phone (None: an anonymous sale); `store_code` None is the client's own store."""

    external_id: str
    occurred_at: datetime
    currency: str
    amount: int
    subtotal: int | None = None
    member_code: str | None = None
    store_code: str | None = None
    channel: str = "pos"
    lines: tuple[BasketLine, ...] = ()
    coupon_codes: tuple[str, ...] = ()
    points_redeemed: int = 0

    @property
    def basket_amount(self) -> int:
        """The basket before discounts: `subtotal`, or `amount` when none was given."""
        return self.amount if self.subtotal is None else self.subtotal


@dataclass(frozen=True)
class Refund:
    """A refund of part or all of a sale; `occurred_at` None is the moment it is recorded."""

    external_id: str
    amount: int
    occurred_at: datetime | None = None
    lines: tuple[BasketLine, ...] = ()
