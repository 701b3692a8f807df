"""The marketing console (/marketing/): the dashboard (RFM, churn risk, bought-together) and the offer
screens (offers, coupon batches and their progress).

- `dashboard_views.py`: blueprint `marketing`: the dashboard, its CSV downloads, "rescore now".
- `offer_views.py`, `offer_forms.py`: blueprint `marketing_offers`: offers and coupon batches.

The rules are in `insights/` and `campaigns/`; templates in templates/marketing/.
"""
