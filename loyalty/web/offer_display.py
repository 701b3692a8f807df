"""Offers and coupons in words, for the screens: what an offer gives and what it asks of a sale, in the
reader's language. The marketing console, the member's wallet and the staff console say it the same way."""

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, Offer
from loyalty.i18n import money, number

KIND_LABELS = {
    "amount_off": _l("Amount off"),
    "percent_off": _l("Percent off"),
    "free_item": _l("Free item"),
    "bonus_points": _l("Bonus points"),
    "points_multiplier": _l("Points multiplier"),
}
COUPON_STATUS_LABELS = {"issued": _l("issued"), "redeemed": _l("redeemed"), "void": _l("void"),
                        "expired": _l("expired")}
BATCH_STATUS_LABELS = {"queued": _l("queued"), "running": _l("running"), "done": _l("done"),
                       "failed": _l("failed")}


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def benefit(offer: Offer, currency: str) -> str:
    """What the offer gives: "CN¥10.00 off", "15% off, at most CN¥50.00", "2× points"."""
    if offer.kind == "amount_off":
        return _("%(amount)s off", amount=money(offer.value, currency))
    if offer.kind == "percent_off":
        if offer.max_discount:
            return _("%(percent)s%% off, at most %(amount)s", percent=offer.value,
                     amount=money(offer.max_discount, currency))
        return _("%(percent)s%% off", percent=offer.value)
    if offer.kind == "free_item":
        return _("One item free: %(skus)s", skus=", ".join(offer.skus or []))
    if offer.kind == "bonus_points":
        return _("%(points)s bonus points", points=number(offer.value))
    if offer.kind == "points_multiplier":
        whole, part = divmod(offer.value, 100)
        times = f"{whole}" if not part else f"{whole}.{part:02d}".rstrip("0")
        return _("%(times)s× points on the sale", times=times)
    return offer.kind


def conditions(offer: Offer, currency: str) -> list[str]:
    """What a sale needs for the offer to apply, one line each; stacking is always said."""
    lines = []
    if offer.min_spend:
        lines.append(_("Spend at least %(amount)s", amount=money(offer.min_spend, currency)))
    if offer.skus and offer.kind != "free_item":
        lines.append(_("On products: %(skus)s", skus=", ".join(offer.skus)))
    if offer.categories:
        lines.append(_("On categories: %(categories)s", categories=", ".join(offer.categories)))
    if offer.tiers:
        lines.append(_("For tiers: %(tiers)s", tiers=", ".join(offer.tiers)))
    if offer.per_member_limit:
        lines.append(_("At most %(count)s per member", count=offer.per_member_limit))
    lines.append(_("Can be combined with other coupons") if offer.stackable
                 else _("Cannot be combined with other coupons"))
    return lines


@dataclass(frozen=True)
class CouponCard:
    """One coupon as a wallet or a till shows it."""

    code: str
    offer_name: str
    benefit: str
    conditions: list[str] = field(default_factory=list)
    expires_at: datetime | None = None


def coupon_card(coupon: Coupon, currency: str) -> CouponCard:
    offer = coupon.offer
    return CouponCard(code=codes.display(coupon.code), offer_name=offer.name, benefit=benefit(offer, currency),
                      conditions=conditions(offer, currency),
                      expires_at=coupon.expires_at or offer.valid_until)
