"""Headers every response carries (registered by `create_app`): a Content-Security-Policy that allows
only this site's own scripts, styles and images (the templates have no inline script or style; the
JSON islands of the marketing dashboard are data, not script), no framing, no MIME sniffing, a
referrer kept on this site, HSTS outside development, and `no-store` on the pages that show personal
data, so a shared computer's cache or back button does not show them to the next person."""

from flask import Flask, request

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    # QR codes of the coupon wallet are data: images inside the page (portal_views._qr_data_uri).
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"
# Blueprints whose pages show members' or staff's data (sign-in pages included: they show who is signed in).
PERSONAL_BLUEPRINTS = {"portal", "staff", "staff_auth", "admin", "admin_program", "marketing", "marketing_offers"}


def register_security_headers(app: Flask) -> None:
    development = app.config["ENVIRONMENT"] == "development"

    @app.after_request
    def add_security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not development:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.blueprint in PERSONAL_BLUEPRINTS and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
