"""What the HTML front ends (portal, staff, marketing, admin) share, so none of them imports another:

- `site.py`: blueprint `site`: the language switch, template filters, the CSRF-failure page, the root.
- `access.py`: who is signed in (Flask-Login identities, credential stamps) and role guards for views.
- `sign_in.py`, `forms.py`: the staff sign-in pages and the sign-in form.
- `throttle.py`: sign-in, sign-up and password-reset limits on views.
- `security_headers.py`: CSP, framing, nosniff, referrer, HSTS, no-store on personal pages.
- `offer_display.py`: how an offer and a coupon are described on a page, in the reader's language.
"""
