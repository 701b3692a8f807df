"""Member jobs. The password-reset email is sent by a worker, so a slow or unreachable mail server
never holds up the page (inline, without Redis, it is sent before the page answers)."""

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from loyalty.extensions import db
from loyalty.jobs import enqueue, task
from loyalty.mail import send_mail
from loyalty.members import portal_services as services
from loyalty.members.models import Member

# Tries of a mail that failed (the server down for a moment), at these delays in seconds.
MAIL_RETRY_INTERVALS = [30, 120, 600]


@task
def send_password_reset(member_id: int, locale: str, base_url: str) -> None:
    """Email a reset link, in `locale`, to the member if they are still active. The link is made here,
    when it is sent, so its hour starts then; `base_url` is the site the member asked from (used when
    PUBLIC_BASE_URL is not configured)."""
    member = db.session.get(Member, member_id)
    if member is None or member.status != "active" or not member.email:
        return
    token = services.password_reset_token(member)
    base = current_app.config["PUBLIC_BASE_URL"] or base_url
    with current_app.test_request_context(base_url=base), force_locale(locale):
        link = url_for("portal.reset_password", token=token, _external=True)
        minutes = current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"] // 60
        body = render_template("portal/email/reset_password.txt", member=member, link=link, minutes=minutes)
        send_mail(member.email, _("Set a new password"), body)


def enqueue_password_reset(member: Member, locale: str, base_url: str):
    return enqueue(send_password_reset, member.id, locale, base_url, queue="default",
                   retry_intervals=MAIL_RETRY_INTERVALS)
