"""Segments: a rule tree over members, compiled to one SQL query, and its stored evaluations.

A rule is `{"all": [...]}`, `{"any": [...]}`, `{"not": rule}` or a condition `{"field", "op", "value",
"within_days"?}` (docs/api.md "Segments"). `parse_rule` turns the JSON into a typed tree, refusing an
unknown field or operator or a value of the wrong type with a ValidationFailed that names it;
`member_query` compiles the tree into one SELECT of member ids (correlated EXISTS and scalar
subqueries over members, sales, lines, lots and saved segments) that runs on SQLite and PostgreSQL.

What each field means, as of `now`:
- Every condition is true or false for every member: one on a value the member lacks (no birthday,
  never scored, no purchase yet) is false, whatever the operator, and `not` makes it true.
- Erased members are in no segment.
- `enrolled_days_ago`, `days_since_last_purchase`: whole days (24 hours) elapsed, rounded down.
- A purchase is a sale (not a refund) that occurred at or before `now`; with `within_days` N, in the
  N days up to `now`. `purchases` counts them, `spend` sums what was paid net of refunds (minor units),
  `bought_sku` / `bought_category` / `channel_used` ask whether one of them had that SKU, category or
  channel (`!=` and `not_in`: none had).
- `points_expiring`: points left in lots that expire after `now` and within `within_days` days.
- `tier`, `home_store`: the tier's and the store's codes; scores are the member's latest (RFM 1-5,
  `churn_risk` 0-1, `churn_band` low/medium/high); `in_segment`: a saved segment's current members.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from loyalty.auth.models import Store
from loyalty.campaigns.segment_models import Segment, SegmentChange, SegmentMember
from loyalty.db import UTCDateTime
from loyalty.errors import NotFound, ValidationFailed
from loyalty.members.models import Member
from loyalty.points.models import PointsLot, Tier
from loyalty.sales.models import Transaction, TransactionLine

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between")
EQUALITY_OPERATORS = ("=", "!=", "in", "not_in")
# Deeper trees are refused (a marketer's rule is a few levels deep; a thousand would exhaust the stack).
MAX_DEPTH = 20
# The widest window a rule may ask about (100 years): keeps `now - within_days` a valid datetime.
MAX_WITHIN_DAYS = 36_500


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # "integer", "number", "string" or "boolean": the type of `value`
    operators: tuple[str, ...]
    within_days: str = "never"  # "never", "optional" or "required"
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


_ORDERED = OPERATORS
_NUMBER = dict(kind="integer", operators=_ORDERED)
_SCORE = dict(kind="integer", operators=_ORDERED, minimum=1, maximum=5)

FIELDS: dict[str, FieldSpec] = {
    "tier": FieldSpec("string", EQUALITY_OPERATORS),
    "status": FieldSpec("string", EQUALITY_OPERATORS, choices=("active", "suspended", "erased")),
    "home_store": FieldSpec("string", EQUALITY_OPERATORS),
    "enrolled_days_ago": FieldSpec(**_NUMBER, minimum=0),
    "birthday_month": FieldSpec("integer", _ORDERED, minimum=1, maximum=12),
    "email_marketing": FieldSpec("boolean", ("=", "!=")),
    "sms_marketing": FieldSpec("boolean", ("=", "!=")),
    "points_balance": FieldSpec(**_NUMBER),
    "points_expiring": FieldSpec(**_NUMBER, within_days="required"),
    "days_since_last_purchase": FieldSpec(**_NUMBER, minimum=0),
    "purchases": FieldSpec(**_NUMBER, within_days="optional"),
    "spend": FieldSpec(**_NUMBER, within_days="optional"),
    "bought_sku": FieldSpec("string", EQUALITY_OPERATORS, within_days="optional"),
    "bought_category": FieldSpec("string", EQUALITY_OPERATORS, within_days="optional"),
    "channel_used": FieldSpec("string", EQUALITY_OPERATORS, within_days="optional", choices=("pos", "online")),
    "rfm_segment": FieldSpec("string", EQUALITY_OPERATORS),
    "recency_score": FieldSpec(**_SCORE),
    "frequency_score": FieldSpec(**_SCORE),
    "monetary_score": FieldSpec(**_SCORE),
    "churn_risk": FieldSpec("number", _ORDERED, minimum=0, maximum=1),
    "churn_band": FieldSpec("string", EQUALITY_OPERATORS, choices=("low", "medium", "high")),
    "in_segment": FieldSpec("integer", EQUALITY_OPERATORS, minimum=1),
}


# --- the typed tree --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    # One scalar for = != < <= > >=; a tuple for in / not_in (one or more) and between (low, high).
    value: object
    within_days: int | None = None


@dataclass(frozen=True)
class All:
    rules: tuple["Rule", ...]


@dataclass(frozen=True)
class Any:
    rules: tuple["Rule", ...]


@dataclass(frozen=True)
class Not:
    rule: "Rule"


Rule = Condition | All | Any | Not


class _Invalid(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def parse_rule(raw, path: str = "rule") -> Rule:
    """The typed tree of a rule as JSON; ValidationFailed naming the first thing wrong and where."""
    try:
        return _parse(raw, path, 0)
    except _Invalid as invalid:
        raise ValidationFailed(f"{invalid.path}: {invalid.message}", errors={invalid.path: [invalid.message]}) from None


def _parse(raw, path: str, depth: int) -> Rule:
    if depth > MAX_DEPTH:
        raise _Invalid(path, f"A rule nests at most {MAX_DEPTH} levels deep.")
    if not isinstance(raw, dict):
        raise _Invalid(path, "A rule is an object: all, any, not, or a condition.")
    if len(raw) == 1 and next(iter(raw)) in ("all", "any"):
        key, children = next(iter(raw.items()))
        if not isinstance(children, list):
            raise _Invalid(f"{path}.{key}", f"'{key}' takes a list of rules.")
        rules = tuple(_parse(child, f"{path}.{key}[{index}]", depth + 1) for index, child in enumerate(children))
        return All(rules) if key == "all" else Any(rules)
    if len(raw) == 1 and "not" in raw:
        return Not(_parse(raw["not"], f"{path}.not", depth + 1))
    if "field" not in raw:
        raise _Invalid(path, "A rule is {all: [...]}, {any: [...]}, {not: rule} or a condition with a field.")
    return _parse_condition(raw, path)


def _parse_condition(raw: dict, path: str) -> Condition:
    unknown = sorted(set(raw) - {"field", "op", "value", "within_days"})
    if unknown:
        raise _Invalid(f"{path}.{unknown[0]}", f"Unknown key '{unknown[0]}' in a condition.")
    field = raw["field"]
    spec = FIELDS.get(field) if isinstance(field, str) else None
    if spec is None:
        raise _Invalid(f"{path}.field", f"Unknown field {field!r}.")
    op = raw.get("op")
    if op not in OPERATORS:
        raise _Invalid(f"{path}.op", f"Unknown operator {op!r}.")
    if op not in spec.operators:
        raise _Invalid(f"{path}.op", f"Operator '{op}' does not apply to '{field}' (use {', '.join(spec.operators)}).")
    if "value" not in raw:
        raise _Invalid(f"{path}.value", f"'{field}' needs a value.")
    return Condition(field, op, _parse_value(spec, field, op, raw["value"], f"{path}.value"),
                     _parse_within_days(spec, field, raw.get("within_days"), f"{path}.within_days"))


def _parse_value(spec: FieldSpec, field: str, op: str, value, path: str):
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise _Invalid(path, f"'{op}' takes a non-empty list of values for '{field}'.")
        return tuple(_scalar(spec, field, item, path) for item in value)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _Invalid(path, f"'between' takes [low, high] for '{field}'.")
        low, high = (_scalar(spec, field, item, path) for item in value)
        if low > high:
            raise _Invalid(path, f"'between' takes [low, high] with low <= high for '{field}'.")
        return (low, high)
    return _scalar(spec, field, value, path)


def _scalar(spec: FieldSpec, field: str, value, path: str):
    # bool is an int in Python; JSON true is not a number.
    if spec.kind == "boolean":
        ok = isinstance(value, bool)
    elif spec.kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec.kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str) and 0 < len(value) <= 64
    if not ok:
        raise _Invalid(path, f"'{field}' takes a {spec.kind} value, not {value!r}.")
    if spec.choices and value not in spec.choices:
        raise _Invalid(path, f"'{field}' is one of {', '.join(spec.choices)}, not {value!r}.")
    if spec.kind in ("integer", "number"):
        low = spec.minimum if spec.minimum is not None else -(10**15)
        high = spec.maximum if spec.maximum is not None else 10**15
        if not low <= value <= high:
            raise _Invalid(path, f"'{field}' takes a value from {low} to {high}, not {value!r}.")
    return value


def _parse_within_days(spec: FieldSpec, field: str, within_days, path: str) -> int | None:
    if within_days is None:
        if spec.within_days == "required":
            raise _Invalid(path, f"'{field}' needs within_days.")
        return None
    if spec.within_days == "never":
        raise _Invalid(path, f"'{field}' takes no within_days.")
    if not isinstance(within_days, int) or isinstance(within_days, bool) or not 1 <= within_days <= MAX_WITHIN_DAYS:
        raise _Invalid(path, f"within_days is a whole number of days from 1 to {MAX_WITHIN_DAYS}, not {within_days!r}.")
    return within_days


def rule_to_json(rule: Rule) -> dict:
    """The rule as JSON again, in the shape parse_rule reads."""
    if isinstance(rule, All):
        return {"all": [rule_to_json(child) for child in rule.rules]}
    if isinstance(rule, Any):
        return {"any": [rule_to_json(child) for child in rule.rules]}
    if isinstance(rule, Not):
        return {"not": rule_to_json(rule.rule)}
    condition = {"field": rule.field, "op": rule.op,
                 "value": list(rule.value) if isinstance(rule.value, tuple) else rule.value}
    if rule.within_days is not None:
        condition["within_days"] = rule.within_days
    return condition


def _conditions(rule: Rule):
    if isinstance(rule, Condition):
        yield rule
    elif isinstance(rule, Not):
        yield from _conditions(rule.rule)
    else:
        for child in rule.rules:
            yield from _conditions(child)


# --- compiling to SQL ------------------------------------------------------------------------------

def member_query(rule: Rule, now: datetime) -> sa.Select:
    """One SELECT of the ids of the (not erased) members the rule holds for as of `now`."""
    return sa.select(Member.id).where(Member.status != "erased", _compile(rule, now))


def _compile(rule: Rule, now: datetime) -> sa.ColumnElement[bool]:
    if isinstance(rule, All):
        return sa.and_(sa.true(), *(_compile(child, now) for child in rule.rules))
    if isinstance(rule, Any):
        return sa.or_(sa.false(), *(_compile(child, now) for child in rule.rules))
    if isinstance(rule, Not):
        return sa.not_(_compile(rule.rule, now))
    return _COMPILERS[rule.field](rule, now)


def _at(moment: datetime) -> sa.BindParameter:
    return sa.literal(moment, UTCDateTime())


def _compare(expression, op: str, value) -> sa.ColumnElement[bool]:
    """`expression op value`, false where the expression is NULL (so that `not` is its complement)."""
    if op == "=":
        test = expression == value
    elif op == "!=":
        test = expression != value
    elif op == "<":
        test = expression < value
    elif op == "<=":
        test = expression <= value
    elif op == ">":
        test = expression > value
    elif op == ">=":
        test = expression >= value
    elif op == "in":
        test = expression.in_(value)
    elif op == "not_in":
        test = expression.not_in(value)
    else:
        test = expression.between(*value)
    return sa.and_(expression.is_not(None), test)


def _column(column):
    return lambda condition, now: _compare(column, condition.op, condition.value)


def _by_code(column, code_column, id_column):
    """A member's foreign key compared by the referenced row's code."""

    def compile_(condition, now):
        return _compare(_code_of(column, code_column, id_column), condition.op, condition.value)

    return compile_


def _code_of(column, code_column, id_column):
    return sa.select(code_column).where(id_column == column).scalar_subquery()


def _days_ago(moment_expression, condition: Condition, now: datetime) -> sa.ColumnElement[bool]:
    """Compare the whole days elapsed since a moment: "at least N days ago" is the moment at or before
    `now - N days`, so every operator becomes a comparison of the moment with fixed instants."""

    def at_least(days: int):
        return sa.and_(moment_expression.is_not(None), moment_expression <= _at(now - timedelta(days=days)))

    def not_yet(days: int):  # fewer than `days` days elapsed
        return sa.and_(moment_expression.is_not(None), sa.not_(at_least(days)))

    op, value = condition.op, condition.value
    if op == "between":
        return sa.and_(at_least(value[0]), not_yet(value[1] + 1))
    if op in ("in", "not_in"):
        matches = sa.or_(*(sa.and_(at_least(days), not_yet(days + 1)) for days in value))
        return matches if op == "in" else sa.and_(moment_expression.is_not(None), sa.not_(matches))
    return {
        "=": lambda: sa.and_(at_least(value), not_yet(value + 1)),
        "!=": lambda: sa.and_(moment_expression.is_not(None),
                              sa.not_(sa.and_(at_least(value), not_yet(value + 1)))),
        ">=": lambda: at_least(value),
        ">": lambda: at_least(value + 1),
        "<": lambda: not_yet(value),
        "<=": lambda: not_yet(value + 1),
    }[op]()


def _enrolled_days_ago(condition, now):
    return _days_ago(Member.enrolled_at, condition, now)


def _member_sales(condition: Condition, now: datetime) -> list:
    """Where-clauses of the member's purchases (as defined above) in the condition's window."""
    clauses = [Transaction.member_id == Member.id, Transaction.kind == "sale", Transaction.occurred_at <= _at(now)]
    if condition.within_days is not None:
        clauses.append(Transaction.occurred_at > _at(now - timedelta(days=condition.within_days)))
    return clauses


def _days_since_last_purchase(condition, now):
    last = sa.select(sa.func.max(Transaction.occurred_at)).where(*_member_sales(condition, now)).scalar_subquery()
    return _days_ago(last, condition, now)


def _purchases(condition, now):
    count = sa.select(sa.func.count()).where(*_member_sales(condition, now)).scalar_subquery()
    return _compare(count, condition.op, condition.value)


def _spend(condition, now):
    net = sa.func.coalesce(sa.func.sum(Transaction.amount - Transaction.refunded_amount), 0)
    total = sa.select(net).where(*_member_sales(condition, now)).scalar_subquery()
    return _compare(total, condition.op, condition.value)


def _points_expiring(condition, now):
    expiring = sa.select(sa.func.coalesce(sa.func.sum(PointsLot.remaining), 0)).where(
        PointsLot.member_id == Member.id,
        PointsLot.remaining > 0,
        PointsLot.expires_at > _at(now),
        PointsLot.expires_at <= _at(now + timedelta(days=condition.within_days)),
    ).scalar_subquery()
    return _compare(expiring, condition.op, condition.value)


def _bought(column, joins_lines: bool):
    """Did one of the member's purchases have this value in `column`? `!=`/`not_in`: none did."""

    def compile_(condition, now):
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        query = sa.select(sa.literal(1)).where(*_member_sales(condition, now), column.in_(values))
        if joins_lines:
            query = query.join_from(Transaction, TransactionLine, TransactionLine.transaction_id == Transaction.id)
        found = query.exists()
        return found if condition.op in ("=", "in") else sa.not_(found)

    return compile_


def _in_segment(condition, now):
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    found = sa.select(sa.literal(1)).where(
        SegmentMember.member_id == Member.id, SegmentMember.segment_id.in_(values)
    ).exists()
    return found if condition.op in ("=", "in") else sa.not_(found)


def _churn_risk(condition, now):
    """Stored in basis points (integers); the value as written, in basis points, may fall between two
    (0.12345), so each comparison becomes one on whole basis points that holds for exactly the same
    members, with no float rounding on the way."""
    risk = Member.churn_risk_bp
    op = condition.op
    if op == "between":
        low, high = (_basis_points(value) for value in condition.value)
        return _compare(risk, "between", (math.ceil(low), math.floor(high)))
    if op in ("=", "!=", "in", "not_in"):
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        whole = tuple(int(bp) for bp in map(_basis_points, values) if bp == int(bp))
        found = _compare(risk, "in", whole) if whole else sa.false()
        return found if op in ("=", "in") else sa.and_(risk.is_not(None), sa.not_(found))
    bp = _basis_points(condition.value)
    rounded = {">=": math.ceil(bp), ">": math.floor(bp), "<=": math.floor(bp), "<": math.ceil(bp)}[op]
    return _compare(risk, op, rounded)


def _basis_points(risk) -> Decimal:
    return Decimal(str(risk)) * 10_000


_COMPILERS = {
    "tier": _by_code(Member.tier_id, Tier.code, Tier.id),
    "status": _column(Member.status),
    "home_store": _by_code(Member.home_store_id, Store.code, Store.id),
    "enrolled_days_ago": _enrolled_days_ago,
    "birthday_month": _column(sa.extract("month", Member.birthday)),
    "email_marketing": _column(Member.email_marketing),
    "sms_marketing": _column(Member.sms_marketing),
    "points_balance": _column(Member.points_balance),
    "points_expiring": _points_expiring,
    "days_since_last_purchase": _days_since_last_purchase,
    "purchases": _purchases,
    "spend": _spend,
    "bought_sku": _bought(TransactionLine.sku, joins_lines=True),
    "bought_category": _bought(TransactionLine.category, joins_lines=True),
    "channel_used": _bought(Transaction.channel, joins_lines=False),
    "rfm_segment": _column(Member.rfm_segment),
    "recency_score": _column(Member.rfm_r),
    "frequency_score": _column(Member.rfm_f),
    "monetary_score": _column(Member.rfm_m),
    "churn_risk": _churn_risk,
    "churn_band": _column(Member.churn_band),
    "in_segment": _in_segment,
}
assert set(_COMPILERS) == set(FIELDS)


# --- services --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preview:
    member_count: int
    sample: list[str]


def check_references(session, rule: Rule, own_id: int | None = None) -> None:
    """`in_segment` must name saved segments other than the one being defined."""
    wanted = {segment_id for condition in _conditions(rule) if condition.field == "in_segment"
              for segment_id in (condition.value if isinstance(condition.value, tuple) else (condition.value,))}
    known = set(session.scalars(sa.select(Segment.id).where(Segment.id.in_(wanted)))) if wanted else set()
    for segment_id in sorted(wanted):
        if segment_id not in known or segment_id == own_id:
            message = f"in_segment names no saved segment with id {segment_id}."
            raise ValidationFailed(message, errors={"rule": [message]})


def preview(session, rule: Rule, now: datetime, sample_size: int = 20) -> Preview:
    """How many members the rule holds for now, and the member numbers of the first `sample_size`."""
    check_references(session, rule)
    ids = member_query(rule, now).subquery()
    count = session.scalar(sa.select(sa.func.count()).select_from(ids))
    sample = session.scalars(
        sa.select(Member.member_no).where(Member.id.in_(sa.select(ids.c.id))).order_by(Member.id).limit(sample_size)
    ).all()
    return Preview(count, list(sample))


def create_segment(session, name: str, rule: Rule, now: datetime) -> Segment:
    """Save a segment and evaluate it at once."""
    check_references(session, rule)
    segment = Segment(name=name, rule=rule_to_json(rule), member_count=0, created_at=now)
    session.add(segment)
    session.flush()
    evaluate_segment(session, segment.id, now)
    return segment


def get_segment(session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"no segment has the id {segment_id}")
    return segment


@dataclass(frozen=True)
class Evaluation:
    member_count: int
    entered: int
    left: int


def evaluate_segment(session, segment_id: int, now: datetime) -> Evaluation:
    """Re-run a saved segment's rule: record who entered and who left (SegmentChange), make its
    SegmentMember rows the members it now holds, and store the count and time. All set-based, under a
    lock on the segment row so two evaluations of one segment take turns."""
    segment = session.scalars(
        sa.select(Segment).where(Segment.id == segment_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if segment is None:
        raise NotFound(f"no segment has the id {segment_id}")
    matching = member_query(parse_rule(segment.rule), now)
    current = sa.select(SegmentMember.member_id).where(SegmentMember.segment_id == segment_id)
    entering = matching.where(Member.id.not_in(current))
    leaving = current.where(SegmentMember.member_id.not_in(matching))
    changes = SegmentChange.__table__
    change_columns = ["segment_id", "member_id", "change", "at"]

    # Counted from RETURNING: an INSERT ... SELECT's rowcount is -1 on PostgreSQL through SQLAlchemy.
    connection = session.connection()
    entered = len(connection.execute(changes.insert().from_select(
        change_columns, entering.with_only_columns(sa.literal(segment_id), Member.id, sa.literal("entered"), _at(now))
    ).returning(changes.c.id)).all())
    left = len(connection.execute(changes.insert().from_select(
        change_columns,
        leaving.with_only_columns(sa.literal(segment_id), SegmentMember.member_id, sa.literal("left"), _at(now)),
    ).returning(changes.c.id)).all())
    connection.execute(SegmentMember.__table__.insert().from_select(
        ["segment_id", "member_id", "entered_at"],
        entering.with_only_columns(sa.literal(segment_id), Member.id, _at(now)),
    ))
    connection.execute(sa.delete(SegmentMember.__table__).where(
        SegmentMember.segment_id == segment_id, SegmentMember.member_id.not_in(matching)
    ))
    segment.member_count = session.scalar(sa.select(sa.func.count()).select_from(current.subquery()))
    segment.evaluated_at = now
    session.flush()
    return Evaluation(segment.member_count, entered, left)


def segment_member_numbers(session, segment_id: int, limit: int, after_id: int | None) -> tuple[list[str], int | None]:
    """A page of a saved segment's current members' numbers by member id, and the id to go on after
    (None on the last page)."""
    statement = (
        sa.select(Member.id, Member.member_no)
        .join(SegmentMember, SegmentMember.member_id == Member.id)
        .where(SegmentMember.segment_id == segment_id)
    )
    if after_id is not None:
        statement = statement.where(Member.id > after_id)
    rows = session.execute(statement.order_by(Member.id).limit(limit + 1)).all()
    page = rows[:limit]
    return [row.member_no for row in page], (page[-1].id if len(rows) > limit else None)


def segment_ids(session) -> list[int]:
    return list(session.scalars(sa.select(Segment.id).order_by(Segment.id)))


def member_ids_query(session, segment_id: int) -> sa.Select:
    """The ids of the members currently in saved segment `segment_id`, as of its last evaluation:
    a select to use as a subquery (`Member.id.in_(...)`) or to run."""
    del session  # unused: the members are stored rows; the parameter is part of the shared interface
    return sa.select(SegmentMember.member_id).where(SegmentMember.segment_id == segment_id)
