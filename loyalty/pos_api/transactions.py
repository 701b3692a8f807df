"""/api/v1/transactions (docs/api.md "Sales" and "Refunds"): post a sale or a batch of them, read a sale
with its refunds, refund one. Thin: parse, hand the sale path its requests, serialise, commit."""

from flask import request

from loyalty.answer_once import fingerprint
from loyalty.clock import utcnow
from loyalty.errors import InvalidFields
from loyalty.extensions import db
from loyalty.metrics import count_refund
from loyalty.points.program import load_program
from loyalty.pos_api import schemas
from loyalty.pos_api.auth import current_client, resource_blueprint
from loyalty.pos_api.idempotency import REPLAYED_HEADERS, json_response, run_idempotent
from loyalty.pos_api.problems import refuse_as_schema
from loyalty.pos_api.sale_posting import SaleSubmission, answer_batch, answer_in_group
from loyalty.sales.services import get_sale, record_refund

transactions = resource_blueprint("api_transactions", "/api/v1/transactions", "Sales and refunds")


@transactions.route("", methods=["POST"])
@transactions.arguments(schemas.sale_schema)
@transactions.response(201, schemas.sale_response_schema)
@transactions.alt_response(403, description="store_code names a store other than the key's")
@transactions.alt_response(409, description="idempotency-conflict")
@transactions.alt_response(422, description="unknown-member, insufficient-points, coupon-invalid, ...")
def post_sale(sale):
    """Post a sale: coupons, points redemption, earning and tier upgrade in one DB transaction.
    Posting the same `external_id` with the same body again replays the first response."""
    answer = answer_in_group(SaleSubmission(current_client(), request.get_json(), sale))
    if isinstance(answer.error, InvalidFields):
        refuse_as_schema(answer.error)
    if answer.error is not None:
        raise answer.error
    return json_response(answer.body, answer.status, headers=REPLAYED_HEADERS if answer.replayed else None)


@transactions.route("/batch", methods=["POST"])
@transactions.arguments(schemas.BatchSchema)
@transactions.response(200, schemas.BatchResponseSchema)
def post_batch(body):
    """Post up to 1,000 sales, each on its own: one failing does not stop the others."""
    client = current_client()
    answers = answer_batch([SaleSubmission.parse(client, item) for item in body["sales"]])
    return json_response({"results": [answer.as_batch_item() for answer in answers]})


@transactions.route("/<external_id>")
@transactions.response(200, schemas.TransactionSchema)
def get_transaction(external_id):
    """A sale with its refunds."""
    sale = get_sale(db.session, current_client(), external_id)
    return {
        "external_id": sale.external_id, "member_no": sale.member.member_no if sale.member else None,
        "store_code": sale.store.code,
        "channel": sale.channel, "occurred_at": sale.occurred_at, "currency": sale.currency, "amount": sale.amount,
        "subtotal": sale.subtotal, "points_earned": sale.points_earned, "points_redeemed": sale.points_redeemed,
        "refunded_amount": sale.refunded_amount, "points_reversed": sale.points_reversed,
        "points_restored": sale.points_restored, "lines": sale.lines, "refunds": sale.refunds,
    }


@transactions.route("/<external_id>/refunds", methods=["POST"])
@transactions.arguments(schemas.RefundSchema)
@transactions.response(201, schemas.RefundResponseSchema)
@transactions.alt_response(422, description="refund-exceeds-sale")
def post_refund_view(refund, external_id):
    """Refund part or all of a sale; points are reversed and restored in proportion (docs/api.md)."""

    recorded: list[dict] = []

    def work():
        result = record_refund(db.session, load_program(db.session), current_client(), external_id, refund, utcnow())
        recorded[:] = [schemas.refund_response_schema.dump(result)]
        return 201, recorded[0]

    request_sha256 = fingerprint({"sale": external_id, "refund": request.get_json()})
    try:
        response = run_idempotent("refund:" + refund.external_id, request_sha256, work)
    except InvalidFields as error:
        refuse_as_schema(error)
    if recorded and "Idempotent-Replayed" not in response.headers:  # committed now, not replayed
        count_refund(recorded[0]["points_reversed"], recorded[0]["points_restored"])
    return response
