"""URL converters shared by every blueprint."""

from flask import Flask
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


def register_url_converters(app: Flask) -> None:
    """Before any blueprint: a rule takes its converters when it is added to the map."""
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.url_map.converters["int"] = IdConverter
