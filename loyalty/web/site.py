"""What every HTML page shares: the language switch, template filters, the page shown when a form's
CSRF token is missing or stale, and the site's root, which sends each visitor to their home."""

from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.routing import BuildError

from loyalty import i18n

site = Blueprint("site", __name__)

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


@site.after_app_request
def remember_language(response: Response) -> Response:
    """`?lang=zh` on any page switches the language and keeps it for later visits."""
    chosen = request.args.get("lang")
    if chosen in current_app.config["LANGUAGES"]:
        response.set_cookie(
            current_app.config["LANGUAGE_COOKIE"], chosen, max_age=LANGUAGE_COOKIE_SECONDS, httponly=True,
            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response


@site.app_context_processor
def page_helpers() -> dict:
    return {"language_links": _language_links, "html_lang": i18n.html_lang, "home_url": _home_url}


@site.route("/")
def root():
    """http://host/ (where the README sends a first-time user): the console for signed-in staff, the
    member portal for everybody else."""
    return redirect(_home_url())


def _home_url() -> str:
    """Where the site's name leads: the console for staff, the portal for everybody else."""
    if current_user.is_authenticated and current_user.kind == "staff":
        try:
            return url_for("staff.scan")
        except BuildError:
            return "/staff/"
    return url_for("portal.dashboard")


def _language_links() -> list[tuple[str, str, str]]:
    """(code, name, url) for each language: this very page with `lang` set."""
    links = []
    for code in current_app.config["LANGUAGES"]:
        args = request.args.to_dict()
        args["lang"] = code
        links.append((code, i18n.LANGUAGE_NAMES.get(code, code), f"{request.path}?{urlencode(args)}"))
    return links


site.add_app_template_filter(i18n.day, "day")
site.add_app_template_filter(i18n.moment, "moment")
site.add_app_template_filter(i18n.number, "number")
site.add_app_template_filter(i18n.signed_points, "signed_points")
site.add_app_template_filter(i18n.money, "money")


@site.app_errorhandler(CSRFError)
def csrf_refused(error: CSRFError):
    # The API is CSRF-exempt (bearer keys), so only HTML forms ever get here.
    return render_template("errors/csrf.html", reason=error.description), 400
