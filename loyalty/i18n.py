"""Language and time zone of a request, and the formatting the pages share.

The language is the one the visitor chose with the switch (`?lang=zh`, remembered in a cookie),
otherwise the best match for the browser's Accept-Language, otherwise English. Times are stored in UTC
and shown in the store's zone: the member's home store, the staff user's store, or the default
(Asia/Shanghai).
"""

from datetime import datetime
from decimal import Decimal

from babel.numbers import get_currency_precision
from flask import current_app, has_request_context, request
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale
from flask_babel import gettext as _
from flask_login import current_user

LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
# What <html lang> says for each catalogue: the Chinese one is Simplified Chinese.
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


def select_locale() -> str | None:
    """Babel's locale selector; None means the default (English)."""
    if not has_request_context():
        return None
    languages = current_app.config["LANGUAGES"]
    for chosen in (request.args.get("lang"), request.cookies.get(current_app.config["LANGUAGE_COOKIE"])):
        if chosen in languages:
            return chosen
    return request.accept_languages.best_match(languages)


def select_timezone() -> str | None:
    """Babel's time zone selector: the signed-in person's store, else the configured default."""
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return None
    from loyalty.auth.models import Store
    from loyalty.extensions import db

    store_id = (current_user.member.home_store_id if current_user.kind == "member"
                else current_user.user.store_id)
    store = db.session.get(Store, store_id) if store_id else None
    return store.timezone if store else None


def html_lang() -> str:
    return HTML_LANG.get(str(get_locale()), "en")


def day(value: datetime) -> str:
    """A date as people write it: "31 Jan 2027", "2027年1月31日", in the store's zone."""
    # TRANSLATORS: a CLDR date pattern (https://unicode.org/reports/tr35/tr35-dates.html); keep the letters.
    return format_date(value, _("d MMM y"))


def moment(value: datetime) -> str:
    """A date and time in the store's zone: "22 Nov 2026, 18:00"."""
    # TRANSLATORS: a CLDR date-time pattern; keep the letters.
    return format_datetime(value, _("d MMM y, HH:mm"))


def number(value: int) -> str:
    """An integer with the locale's grouping: 1,240."""
    return format_decimal(value)


def signed_points(value: int) -> str:
    """Points with an explicit sign, as a ledger line reads: +128, −500."""
    sign = "+" if value > 0 else "−" if value < 0 else ""
    return sign + format_decimal(abs(value))


def money(amount_minor: int, currency: str) -> str:
    """Integer minor units as the locale writes the currency: 12800 CNY → "CN¥128.00" / "¥128.00"."""
    return format_currency(Decimal(amount_minor).scaleb(-get_currency_precision(currency)), currency)
