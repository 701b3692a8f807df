"""Offers and coupons.

- `models.py`: Offer, Coupon, CouponRedemption, OfferMemberUse, CouponBatch.
- `offer_rules.py`: OfferSpec, what an offer is, and every rule it must keep.
- `services.py`: creating and editing offers, issuing, finding and voiding coupons, wallets, expiry.
- `redemption.py`: checking a sale's coupons, redeeming them, giving them back on a full refund;
  `discounts.py`: the order coupons apply in and what each takes off.
- `codes.py`: coupon codes; `batches.py`: bulk issue and CSV export; `tasks.py`: their jobs.
"""
