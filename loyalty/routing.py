"""URL converters shared by every blueprint, and the same refusal of NUL for query strings and forms."""

from itertools import chain

from flask import Flask, abort, current_app, request
from werkzeug.routing import IntegerConverter, UnicodeConverter, ValidationError

from loyalty.db import MAX_ID


class TextConverter(UnicodeConverter):
    """The default `<name>` converter, refusing NUL: no member number, external id, code or token has
    one and PostgreSQL text cannot hold it, so such a URL matches no route (404) instead of failing in
    the database (500)."""

    def to_python(self, value: str) -> str:
        if "\x00" in value:
            raise ValidationError()
        return value


class IdConverter(IntegerConverter):
    """The `<int:name>` converter, at most MAX_ID unless the rule says otherwise: every integer in a
    URL is a row id, and one beyond the 64-bit ids the database hands out names nothing, so it
    matches no route (404) instead of overflowing the query (500)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


def refuse_nul_in_query_and_form() -> None:
    """`before_request` of the HTML side: a query string or form field (name or value) holding NUL is a
    400 before any view reads it. As in a path (TextConverter), nothing a page asks for contains one and
    PostgreSQL text cannot hold it: a view passing it to a query failed in the driver, a 500
    (`/admin/audit?action=%00`). /api/v1 checks its input in its schemas, with its own answers."""
    if request.path.startswith(current_app.config["OPENAPI_URL_PREFIX"] + "/"):
        return
    fields = chain(request.args.items(multi=True), request.form.items(multi=True))
    if any("\x00" in name or "\x00" in value for name, value in fields):
        abort(400)


def register_url_converters(app: Flask) -> None:
    """Before any blueprint: a rule takes its converters when it is added to the map. With them, the
    refusal of NUL in query strings and forms (refuse_nul_in_query_and_form)."""
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.url_map.converters["int"] = IdConverter
    app.before_request(refuse_nul_in_query_and_form)
