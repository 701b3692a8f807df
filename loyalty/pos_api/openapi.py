"""flask-smorest's Api, made to document and speak RFC 9457 problems instead of its own error body."""

import marshmallow as ma
from flask_smorest import Api


class ProblemSchema(ma.Schema):
    type = ma.fields.String(required=True, metadata={"description": "URI ending in the problem's slug"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(),
                            metadata={"description": "field name -> messages (validation-error only)"})


class ProblemApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        """Left to loyalty.pos_api.problems, which also serves the HTML pages their own error pages."""
