"""URL converters shared by every blueprint."""

from flask import Flask
from werkzeug.routing import UnicodeConverter, ValidationError


class TextConverter(UnicodeConverter):
    """The default `<name>` converter, refusing NUL: no member number, external id, code or token has
    one and PostgreSQL text cannot hold it, so such a URL matches no route (404) instead of failing in
    the database (500)."""

    def to_python(self, value: str) -> str:
        if "\x00" in value:
            raise ValidationError()
        return value


def register_url_converters(app: Flask) -> None:
    """Before any blueprint: a rule takes its converters when it is added to the map."""
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
