"""The member portal (/portal/), phone-first: sign-up and sign-in, the rotating QR card, balance and
tier progress, history, the coupon wallet, consents, data export and erasure.

- `views.py`: blueprint `portal`; each view serves only the signed-in member's own data.
- `forms.py`: the portal's forms (shape only).

The rules are in `members/` (accounts, consents, cards, GDPR), `points/` and `campaigns/`; templates
in templates/portal/.
"""
