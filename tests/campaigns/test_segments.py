"""Segments (loyalty.campaigns.segments): every field and operator of a rule, compiled to SQL, selects
exactly the members a plain-Python reading of the definitions (docs/api.md "Segments") selects, over a
small fixed population with varied sales, refunds, lines, lots, consents and scores; and a saved
segment's re-evaluation records who entered and who left."""

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.auth.models import Store
from loyalty.campaigns import segments
from loyalty.campaigns.segment_models import Segment, SegmentChange, SegmentMember
from loyalty.errors import ValidationFailed
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry, PointsLot, Tier
from loyalty.sales.models import Transaction, TransactionLine

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class Sale:
    at: datetime
    amount: int
    refunded: int = 0
    channel: str = "pos"
    lines: tuple = ()  # (sku, category)


@dataclass
class Person:
    tier: str = "BRONZE"
    status: str = "active"
    home_store: str | None = "S001"
    enrolled_at: datetime = ago(400)
    birthday: date | None = None
    email_marketing: bool = False
    sms_marketing: bool = False
    points_balance: int = 0
    rfm: tuple | None = None  # (r, f, m, segment)
    rfm_segment: str | None = None
    churn_bp: int | None = None
    churn_band: str | None = None
    sales: list = field(default_factory=list)
    lots: list = field(default_factory=list)  # (remaining, expires_at)
    segments: tuple = ()  # indexes into the saved segments


POPULATION = [
    Person(),
    Person(tier="SILVER", home_store="S002", enrolled_at=ago(30), birthday=date(1990, 3, 4), email_marketing=True,
           points_balance=1000, rfm=(5, 4, 3), rfm_segment="Champions", churn_bp=1000, churn_band="low",
           sales=[Sale(ago(1.5), 10000, 0, "pos", (("A1", "shoes"), ("B2", "bags"))),
                  Sale(ago(30), 5000, 5000, "online", (("C3", "hats"),))],
           lots=[(300, NOW + timedelta(days=7)), (200, NOW + timedelta(days=60))], segments=(0,)),
    Person(tier="GOLD", home_store=None, enrolled_at=ago(29.9), birthday=date(1985, 12, 31), sms_marketing=True,
           points_balance=5000, rfm=(1, 1, 1), rfm_segment="Lost", churn_bp=6000, churn_band="high",
           sales=[Sale(ago(100), 25000, 1000, "online", (("A1", "shoes"),)),
                  Sale(ago(365), 2000, 0, "pos", (("Z9", None),))],
           lots=[(50, NOW + timedelta(days=30)), (80, NOW - timedelta(days=1))], segments=(0, 1)),
    Person(status="suspended", enrolled_at=ago(0.5), birthday=date(2000, 3, 1), email_marketing=True,
           sms_marketing=True, points_balance=-50, rfm=(3, 3, 3), rfm_segment="At Risk", churn_bp=3000,
           churn_band="medium", sales=[Sale(ago(10), 100, 0, "pos", (("B2", "bags"),))], segments=(1,)),
    Person(status="erased", home_store="S002", churn_bp=7500, churn_band="high", points_balance=100,
           sales=[Sale(ago(5), 999, 0, "pos", (("A1", "shoes"),))]),
    Person(tier="SILVER", enrolled_at=ago(31), rfm_segment="No Purchases", churn_bp=2500, churn_band="low",
           sales=[Sale(ago(-2), 7000, 0, "pos", (("A1", "shoes"),))],  # in the future: not a purchase yet
           lots=[(100, NOW + timedelta(days=90)), (0, NOW + timedelta(days=5))]),
    Person(tier="GOLD", home_store="S002", enrolled_at=ago(365), birthday=date(1970, 7, 7), email_marketing=True,
           points_balance=500, rfm=(2, 5, 4), rfm_segment="Champions", churn_bp=3333, churn_band="medium",
           sales=[Sale(ago(30), 3000, 0, "online", (("C3", "hats"), ("A1", "shoes"))), Sale(ago(29), 4000, 4000),
                  Sale(ago(60), 1000, 500, "pos", (("B2", "bags"),))],
           lots=[(400, NOW + timedelta(days=7)), (100, NOW + timedelta(days=400))], segments=(0,)),
]

STORES = ("S001", "S002")
VALUE_POOLS = {
    "tier": ["BRONZE", "SILVER", "GOLD", "PLATINUM"],
    "status": ["active", "suspended", "erased"],
    "home_store": ["S001", "S002", "S999"],
    "enrolled_days_ago": [0, 1, 29, 30, 31, 100, 365, 400, 401],
    "birthday_month": [1, 3, 7, 12],
    "email_marketing": [True, False],
    "sms_marketing": [True, False],
    "points_balance": [-50, 0, 100, 500, 1000, 5000],
    "points_expiring": [0, 50, 100, 300, 700],
    "days_since_last_purchase": [0, 1, 2, 10, 29, 30, 100, 365],
    "purchases": [0, 1, 2, 3],
    "spend": [0, 100, 500, 4000, 10000, 24000, 30000],
    "bought_sku": ["A1", "B2", "C3", "Z9", "Q0"],
    "bought_category": ["shoes", "bags", "hats", "toys"],
    "channel_used": ["pos", "online"],
    "rfm_segment": ["Champions", "Lost", "At Risk", "No Purchases"],
    "recency_score": [1, 2, 3, 5],
    "frequency_score": [1, 3, 4, 5],
    "monetary_score": [1, 3, 4, 5],
    "churn_risk": [0, 0.1, 0.25, 0.3, 0.3333, 0.33335, 0.6, 0.75, 1],
    "churn_band": ["low", "medium", "high"],
    "in_segment": [0, 1],  # indexes of the saved segments, replaced by their ids
}
WINDOWS = [1, 2, 7, 10, 29, 30, 31, 60, 90, 100, 365, 400]
assert set(VALUE_POOLS) == set(segments.FIELDS)


# --- the population in the database ------------------------------------------------------------------

@dataclass
class Population:
    member_ids: list[int]
    member_nos: list[str]
    segment_ids: list[int]


@pytest.fixture
def population(session, factory) -> Population:
    client = factory.api_client()
    factory.store("S002")
    tiers = {tier.code: tier.id for tier in session.scalars(sa.select(Tier))}
    stores = {store.code: store.id for store in session.scalars(sa.select(Store))}
    saved = [Segment(name=f"saved {index}", rule={"all": []}, member_count=0, created_at=NOW) for index in range(2)]
    session.add_all(saved)
    session.flush()
    member_ids, member_nos = [], []
    for index, person in enumerate(POPULATION):
        r, f, m = person.rfm or (None, None, None)
        member = Member(member_no=f"90000{index:05d}", name=f"P{index}", tier_id=tiers[person.tier],
                        status=person.status, home_store_id=stores[person.home_store] if person.home_store else None,
                        enrolled_at=person.enrolled_at, tier_since=person.enrolled_at, birthday=person.birthday,
                        email_marketing=person.email_marketing, sms_marketing=person.sms_marketing,
                        points_balance=person.points_balance, rfm_r=r, rfm_f=f, rfm_m=m,
                        rfm_segment=person.rfm_segment, churn_risk_bp=person.churn_bp, churn_band=person.churn_band)
        session.add(member)
        session.flush()
        for number, sale in enumerate(person.sales):
            row = Transaction(client_id=client.client_id, kind="sale", external_id=f"P{index}-{number}",
                              member_id=member.id, store_id=stores["S001"], channel=sale.channel,
                              occurred_at=sale.at, currency="CNY", amount=sale.amount, subtotal=sale.amount,
                              refunded_amount=sale.refunded, created_at=NOW)
            row.lines = [TransactionLine(line_no=line_no, sku=sku, category=category, unit_price=1, amount=1)
                         for line_no, (sku, category) in enumerate(sale.lines, start=1)]
            session.add(row)
        for remaining, expires_at in person.lots:
            entry = PointsEntry(member_id=member.id, kind="adjust", points=remaining + 10, created_at=NOW,
                                occurred_at=NOW)
            session.add(entry)
            session.flush()
            session.add(PointsLot(member_id=member.id, entry_id=entry.id, points=remaining + 10, remaining=remaining,
                                  available_at=NOW - timedelta(days=400), expires_at=expires_at, created_at=NOW))
        for segment_index in person.segments:
            session.add(SegmentMember(segment_id=saved[segment_index].id, member_id=member.id, entered_at=NOW))
        member_ids.append(member.id)
        member_nos.append(member.member_no)
    session.commit()
    return Population(member_ids, member_nos, [segment.id for segment in saved])


# --- the definitions, in plain Python -----------------------------------------------------------------

def purchases_of(person: Person, within_days: int | None) -> list[Sale]:
    return [sale for sale in person.sales
            if sale.at <= NOW and (within_days is None or sale.at > NOW - timedelta(days=within_days))]


def whole_days_since(moment: datetime) -> int:
    return math.floor((NOW - moment) / timedelta(days=1))


def value_of(person: Person, condition: dict):
    """The member's value for a condition's field; None where the member has none."""
    name, within_days = condition["field"], condition.get("within_days")
    r, f, m = person.rfm or (None, None, None)
    purchases = purchases_of(person, within_days)
    return {
        "tier": lambda: person.tier,
        "status": lambda: person.status,
        "home_store": lambda: person.home_store,
        "enrolled_days_ago": lambda: whole_days_since(person.enrolled_at),
        "birthday_month": lambda: person.birthday.month if person.birthday else None,
        "email_marketing": lambda: person.email_marketing,
        "sms_marketing": lambda: person.sms_marketing,
        "points_balance": lambda: person.points_balance,
        "points_expiring": lambda: sum(remaining for remaining, expires_at in person.lots
                                       if NOW < expires_at <= NOW + timedelta(days=within_days)),
        "days_since_last_purchase": lambda: (whole_days_since(max(sale.at for sale in purchases))
                                             if purchases else None),
        "purchases": lambda: len(purchases),
        "spend": lambda: sum(sale.amount - sale.refunded for sale in purchases),
        "bought_sku": lambda: {sku for sale in purchases for sku, _ in sale.lines},
        "bought_category": lambda: {category for sale in purchases for _, category in sale.lines},
        "channel_used": lambda: {sale.channel for sale in purchases},
        "rfm_segment": lambda: person.rfm_segment,
        "recency_score": lambda: r,
        "frequency_score": lambda: f,
        "monetary_score": lambda: m,
        "churn_risk": lambda: Decimal(person.churn_bp) / 10_000 if person.churn_bp is not None else None,
        "churn_band": lambda: person.churn_band,
        "in_segment": lambda: set(person.segments),
    }[name]()


def holds(person: Person, rule: dict) -> bool:
    """Whether the rule, naming saved segments by their index, holds for the person."""
    if "all" in rule:
        return all(holds(person, child) for child in rule["all"])
    if "any" in rule:
        return any(holds(person, child) for child in rule["any"])
    if "not" in rule:
        return not holds(person, rule["not"])
    value, op, wanted = value_of(person, rule), rule["op"], rule["value"]
    if rule["field"] == "churn_risk":
        wanted = [Decimal(str(v)) for v in wanted] if isinstance(wanted, list) else Decimal(str(wanted))
    if isinstance(value, set):  # "did any purchase have it" (= and in), "did none" (!= and not_in)
        wanted = set(wanted) if isinstance(wanted, list) else {wanted}
        return bool(value & wanted) if op in ("=", "in") else not value & wanted
    if value is None:
        return False
    return {
        "=": lambda: value == wanted, "!=": lambda: value != wanted,
        "<": lambda: value < wanted, "<=": lambda: value <= wanted,
        ">": lambda: value > wanted, ">=": lambda: value >= wanted,
        "in": lambda: value in wanted, "not_in": lambda: value not in wanted,
        "between": lambda: wanted[0] <= value <= wanted[1],
    }[op]()


def expected(rule: dict, population: Population) -> set[int]:
    return {member_id for person, member_id in zip(POPULATION, population.member_ids, strict=True)
            if person.status != "erased" and holds(person, rule)}


def selected(session, rule: dict) -> set[int]:
    return set(session.scalars(segments.member_query(segments.parse_rule(rule), NOW)))


def with_segment_ids(rule: dict, population: Population) -> dict:
    """The test's rules name saved segments by index; the API by id."""
    if "all" in rule or "any" in rule:
        key = next(iter(rule))
        return {key: [with_segment_ids(child, population) for child in rule[key]]}
    if "not" in rule:
        return {"not": with_segment_ids(rule["not"], population)}
    if rule["field"] != "in_segment":
        return rule
    value = rule["value"]
    ids = [population.segment_ids[v] for v in value] if isinstance(value, list) else population.segment_ids[value]
    return {**rule, "value": ids}


# --- rules, generated -----------------------------------------------------------------------------

@st.composite
def conditions(draw, names=tuple(segments.FIELDS)):
    name = draw(st.sampled_from(names))
    spec = segments.FIELDS[name]
    op = draw(st.sampled_from(spec.operators))
    pool = VALUE_POOLS[name]
    if op in ("in", "not_in"):
        value = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)))
    else:
        value = draw(st.sampled_from(pool))
    condition = {"field": name, "op": op, "value": value}
    if spec.within_days == "required" or (spec.within_days == "optional" and draw(st.booleans())):
        condition["within_days"] = draw(st.sampled_from(WINDOWS))
    return condition


rules = st.recursive(
    conditions(),
    lambda children: st.one_of(
        st.builds(lambda rules: {"all": rules}, st.lists(children, max_size=3)),
        st.builds(lambda rules: {"any": rules}, st.lists(children, max_size=3)),
        st.builds(lambda rule: {"not": rule}, children),
    ),
    max_leaves=6,
)


def every_field_and_operator():
    for name, spec in segments.FIELDS.items():
        for op in spec.operators:
            for position in range(len(VALUE_POOLS[name])):
                pool = VALUE_POOLS[name]
                if op in ("in", "not_in"):
                    value = [pool[position], pool[(position + 2) % len(pool)]]
                elif op == "between":
                    value = sorted([pool[position], pool[(position + 3) % len(pool)]])
                else:
                    value = pool[position]
                conditions = [{"field": name, "op": op, "value": value}]
                if spec.within_days == "required":
                    conditions = [{**conditions[0], "within_days": days} for days in (7, 30, 90)]
                elif spec.within_days == "optional":
                    conditions += [{**conditions[0], "within_days": days} for days in (2, 30, 365)]
                yield from conditions


def test_every_field_and_operator_selects_what_the_definitions_say(session, population):
    checked = 0
    for condition in every_field_and_operator():
        rule = with_segment_ids(condition, population)
        assert selected(session, rule) == expected(condition, population), condition
        assert selected(session, {"not": rule}) == expected({"not": condition}, population), condition
        checked += 1
    assert checked > 500


def test_the_population_makes_each_field_tell_members_apart(session, population):
    """A field every member agrees on would test nothing: each splits the (not erased) population."""
    for name in segments.FIELDS:
        outcomes = {frozenset(expected(condition, population)) for condition in every_field_and_operator()
                    if condition["field"] == name}
        assert len(outcomes) >= 2, name


def test_generated_rule_trees_select_what_the_definitions_say(session, population):
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(rules)
    def check(rule):
        assert selected(session, with_segment_ids(rule, population)) == expected(rule, population)

    check()


def test_preview_counts_and_samples_member_numbers(session, population):
    rule = segments.parse_rule({"field": "purchases", "op": ">=", "value": 1})
    answer = segments.preview(session, rule, NOW, sample_size=2)

    wanted = sorted(expected({"field": "purchases", "op": ">=", "value": 1}, population))
    assert answer.member_count == len(wanted) == 4
    assert answer.sample == [population.member_nos[population.member_ids.index(i)] for i in wanted[:2]]


def test_reevaluation_records_who_entered_and_who_left(session, population):
    rule = segments.parse_rule({"field": "email_marketing", "op": "=", "value": True})
    segment = segments.create_segment(session, "Email ok", rule, NOW)
    session.commit()
    first = set(session.scalars(segments.member_ids_query(session, segment.id)))
    assert first == expected({"field": "email_marketing", "op": "=", "value": True}, population)
    assert segment.member_count == 3 and segment.evaluated_at == NOW

    one_in, one_out = population.member_ids[0], sorted(first)[0]
    session.execute(sa.update(Member).where(Member.id == one_in).values(email_marketing=True))
    session.execute(sa.update(Member).where(Member.id == one_out).values(email_marketing=False))
    later = NOW + timedelta(days=1)
    evaluation = segments.evaluate_segment(session, segment.id, later)
    session.commit()

    assert (evaluation.member_count, evaluation.entered, evaluation.left) == (3, 1, 1)
    assert set(session.scalars(segments.member_ids_query(session, segment.id))) == first - {one_out} | {one_in}
    changes = session.execute(sa.select(SegmentChange.member_id, SegmentChange.change, SegmentChange.at)
                              .where(SegmentChange.segment_id == segment.id).order_by(SegmentChange.id)).all()
    assert [tuple(row) for row in changes] == (
        [(member_id, "entered", NOW) for member_id in sorted(first)]
        + [(one_in, "entered", later), (one_out, "left", later)]
    )
    kept = session.scalar(sa.select(SegmentMember.entered_at).where(
        SegmentMember.segment_id == segment.id, SegmentMember.member_id == sorted(first)[1]))
    assert kept == NOW

    again = segments.evaluate_segment(session, segment.id, later + timedelta(hours=1))
    assert (again.entered, again.left) == (0, 0)


@pytest.mark.parametrize("rule, path, named", [
    ({"field": "shoe_size", "op": "=", "value": 42}, "rule.field", "shoe_size"),
    ({"field": "tier", "op": "like", "value": "G%"}, "rule.op", "like"),
    ({"field": "tier", "op": ">", "value": "GOLD"}, "rule.op", "tier"),
    ({"field": "points_balance", "op": ">", "value": "100"}, "rule.value", "points_balance"),
    ({"field": "email_marketing", "op": "=", "value": 1}, "rule.value", "email_marketing"),
    ({"field": "churn_risk", "op": ">", "value": 1.5}, "rule.value", "churn_risk"),
    ({"field": "churn_band", "op": "=", "value": "severe"}, "rule.value", "churn_band"),
    ({"field": "spend", "op": "between", "value": [10, 5]}, "rule.value", "spend"),
    ({"field": "spend", "op": "in", "value": []}, "rule.value", "spend"),
    ({"field": "points_expiring", "op": ">", "value": 0}, "rule.within_days", "points_expiring"),
    ({"field": "tier", "op": "=", "value": "GOLD", "within_days": 3}, "rule.within_days", "tier"),
    ({"any": [{"field": "tier", "op": "=", "value": "GOLD"}, {"field": "x", "op": "=", "value": 1}]},
     "rule.any[1].field", "'x'"),
    ({"not": {"all": [{"field": "purchases", "op": ">", "value": True}]}}, "rule.not.all[0].value", "purchases"),
    ({"all": {"field": "tier"}}, "rule.all", "all"),
    ({"every": []}, "rule", "rule"),
])
def test_an_invalid_rule_names_what_is_wrong(rule, path, named):
    with pytest.raises(ValidationFailed) as raised:
        segments.parse_rule(rule)

    assert list(raised.value.errors) == [path]
    assert named in raised.value.errors[path][0]


def test_parsed_rules_serialise_back_to_what_was_written():
    rule = {"all": [{"field": "spend", "op": "between", "value": [100, 200], "within_days": 30},
                    {"not": {"any": [{"field": "tier", "op": "in", "value": ["GOLD"]}]}}]}
    assert segments.rule_to_json(segments.parse_rule(rule)) == rule
