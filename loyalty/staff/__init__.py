"""The cashier's console (/staff/): scan a member's card, see the member at a glance, record a sale by
hand, redeem coupons and points, add a note, enrol a member at the counter.

- `views.py`: blueprint `staff`.
- `forms.py`: the console's forms (shape only).

The rules are in the domain packages (`members/`, `sales/`, `points/`, `campaigns/`); templates in
templates/staff/.
"""
