"""/api/v1, the public JSON API for tills and e-commerce (docs/api.md), one module per resource.

- `members.py`, `transactions.py` (sales, batches, refunds), `coupons.py` (validate at the till),
  `offers.py` (offers and coupons for `manage` keys): blueprints; each view parses, calls a service,
  commits and answers.
- `schemas.py`, `offer_schemas.py`: the wire format; `problems.py`: errors as RFC 9457 problems.
- `auth.py`: API keys, scopes, rate limits; `idempotency.py`: answering a POST once.
- `sale_posting.py`: the sale path behind `POST /transactions` and `/transactions/batch` (group commit).
"""


def blueprints() -> list:
    """Every /api/v1 blueprint, in the order the OpenAPI document lists them."""
    from loyalty.pos_api.campaign_results import campaign_results_api
    from loyalty.pos_api.campaigns import campaigns_api
    from loyalty.pos_api.coupons import coupons
    from loyalty.pos_api.members import members
    from loyalty.pos_api.offers import coupon_admin, offers
    from loyalty.pos_api.promotions import promotions
    from loyalty.pos_api.segments import segments_api
    from loyalty.pos_api.transactions import transactions

    return [members, transactions, coupons, offers, coupon_admin, campaigns_api, segments_api, campaign_results_api,
            promotions]
