"""Request bodies as strict JSON: the one parser of every request's JSON, the application's JSON
provider, behind Flask's `request.get_json()` and the API's argument parser alike (`ApiBlueprint`).

Python's json module takes some inputs in ways that surprise later, each refused here as a malformed
body (the API answers a validation-error problem): a repeated key silently keeps its last value (so
a proxy, a log or a signature may have seen another body than the one posted); NaN and Infinity are
not JSON (RFC 8259); a number of more than 4,300 digits raises a bare ValueError (CPython's limit on
int-string conversion); nesting deeper than the interpreter's recursion limit raises RecursionError,
and nesting short of it overflows the stack later, in validation or hashing.
"""

import json

import flask
import flask_smorest
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest

# The deepest body of this API nests five levels (a batch: sales, a sale, its lines, a line); a
# segment rule, a tree of all/any/not, takes two levels a step. Well beyond both.
MAX_DEPTH = 32
INVALID = "Invalid JSON body."


class MalformedJson(ValueError):
    """A body that is not JSON, or not JSON this service accepts; the message says which."""


def loads(data: str | bytes):
    """Parse `data` as JSON, refusing what the module doc lists with MalformedJson."""
    try:
        value = json.loads(data, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except MalformedJson:
        raise
    except RecursionError:
        raise MalformedJson(f"Nested more than {MAX_DEPTH} levels deep.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedJson(INVALID) from None
    except ValueError:  # what is left: int() refusing a number of too many digits
        raise MalformedJson("A number has too many digits.") from None
    _refuse_deep_nesting(value)
    return value


def _object(pairs: list[tuple[str, object]]) -> dict:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise MalformedJson(f"The key {repeated!r} appears more than once in one object.")
    return found


def _refuse_constant(name: str):
    raise MalformedJson(f"{name} is not a JSON number.")


def _refuse_deep_nesting(value) -> None:
    """Walk the arrays and objects level by level, without recursion; scalars are not visited twice."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        below = []
        for container in level:
            if type(container) is dict:
                container = container.values()
            elif type(container) is not list:
                continue
            below.extend(child for child in container if type(child) is dict or type(child) is list)
        if below and depth == MAX_DEPTH:
            raise MalformedJson(f"Nested more than {MAX_DEPTH} levels deep.")
        level = below


class StrictJSONProvider(DefaultJSONProvider):
    """The application's JSON provider: Flask hands it to every request as its `json_module`."""

    def loads(self, s: str | bytes, **kwargs):
        return loads(s)


class StrictJsonRequest(flask.Request):
    """The application's request class: a body `get_json()` refuses is a 400 whose data names the
    reason, as webargs' own refusals do (the API turns it into a validation-error problem)."""

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:  # not a JSON content type at all: Flask's answer
            return super().on_json_loading_failed(e)
        error = BadRequest(str(e) if isinstance(e, MalformedJson) else INVALID)
        error.data = {"messages": {"json": [error.description]}}
        raise error


class ApiParser(FlaskParser):
    """webargs reads the body with the stdlib json module, a second, lenient parse of it; this one
    takes the request's own, strict and cached, so a view's `request.get_json()` costs nothing more."""

    def _raw_load_json(self, req: flask.Request):
        if not is_json_request(req) or not req.get_data(cache=True):
            return core.missing
        return req.get_json()


class ApiBlueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the strict parser: every /api/v1 blueprint is one."""

    ARGUMENTS_PARSER = ApiParser()


def register_json_parsing(app: flask.Flask) -> None:
    app.json = StrictJSONProvider(app)
    app.request_class = StrictJsonRequest
