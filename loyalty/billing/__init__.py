"""Paid membership, to come: a member paying for a tier through Stripe (tiers already carry a
`stripe_price_id`). Nothing lives here yet; the package holds its place in the layering.
"""
