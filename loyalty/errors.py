"""Domain errors. Services raise them; the API renders each as an RFC 9457 problem whose `type` ends
in the error's slug (docs/api.md), and the HTML views show `detail` to the person at the screen."""


class DomainError(Exception):
    slug = "bad-request"
    status = 400
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: dict | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors


class ValidationFailed(DomainError):
    slug, status, title = "validation-error", 422, "Validation failed"


class InvalidFields(ValidationFailed):
    """Fields of a sale or refund that break a rule of their own (a subtotal below the amount, a time
    in the future), refused before anything is looked up: the API answers them as it answers fields
    its schema refuses."""


class NotFound(DomainError):
    slug, status, title = "not-found", 404, "Not found"


class Forbidden(DomainError):
    slug, status, title = "forbidden", 403, "Forbidden"


class UnknownMember(DomainError):
    slug, status, title = "unknown-member", 422, "Unknown member"


class CardTokenExpired(DomainError):
    slug, status, title = "card-token-expired", 410, "Card token expired"


class DuplicateMember(DomainError):
    slug, status, title = "duplicate-member", 409, "Duplicate member"


class IdempotencyConflict(DomainError):
    slug, status, title = "idempotency-conflict", 409, "Idempotency conflict"


class InsufficientPoints(DomainError):
    slug, status, title = "insufficient-points", 422, "Insufficient points"


class CouponInvalid(DomainError):
    slug, status, title = "coupon-invalid", 422, "Coupon invalid"

    def __init__(self, detail: str | None = None, *, reason: str = "unknown", code: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.code = code


class RefundExceedsSale(DomainError):
    slug, status, title = "refund-exceeds-sale", 422, "Refund exceeds sale"


class CurrencyMismatch(DomainError):
    slug, status, title = "currency-mismatch", 422, "Currency mismatch"
