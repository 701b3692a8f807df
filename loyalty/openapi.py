"""flask-smorest's Api, made to document and speak RFC 9457 problems instead of its own error body."""

import http

import marshmallow as ma
from flask_smorest import Api
from flask_smorest.utils import prepare_response

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemSchema(ma.Schema):
    type = ma.fields.String(required=True, metadata={"description": "URI ending in the problem's slug"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(),
                            metadata={"description": "field name -> messages (validation-error only)"})
    request_id = ma.fields.String(metadata={"description": "the request's X-Request-Id, to quote when asking about it"})


class ProblemApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        """flask-smorest's error response components, documented with the content type the problem
        handlers really send (application/problem+json, not application/json)."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def _register_error_handlers(self):
        """Left to loyalty.pos_api.problems, which also serves the HTML pages their own error pages."""
