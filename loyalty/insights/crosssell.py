"""Cross-sell: "bought together" association rules between pairs of SKUs or of categories, mined from
the lines of sales, computed in the database and stored for the staff console and the dashboard.

A basket is one sale (not refunded in full) in the window, members' and anonymous alike; an item
counts once per basket however many lines carry it. With N baskets, n(X) baskets holding X and
n(X, Y) holding both, the rule X -> Y has

    support    = n(X, Y) / N          how common the pair is
    confidence = n(X, Y) / n(X)       how often a basket with X also holds Y
    lift       = confidence / (n(Y) / N) = n(X, Y) * N / (n(X) * n(Y))
                                      > 1: X makes Y likelier than it is in baskets at large

Pairs seen in fewer than `min_together` baskets are dropped: a pair bought together twice has a
large lift and means nothing.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from loyalty.insights.models import AssociationRule
from loyalty.insights.rfm import _one_scoring_at_a_time
from loyalty.sales.models import Transaction, TransactionLine

LEVELS = ("sku", "category")


def _purchase_conditions(sales, since: datetime, until: datetime) -> tuple:
    return (sales.c.kind == "sale", sales.c.occurred_at >= since, sales.c.occurred_at <= until,
            sa.or_(sales.c.refunded_amount < sales.c.amount, sales.c.amount == 0))


def rules_select(level: str, since: datetime, until: datetime, min_together: int, computed_at: datetime) -> sa.Select:
    """Both directions of every pair bought together at least `min_together` times, with counts and
    ratios, ready to insert into association_rules. Counting and the self-join run in the database."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    sales, lines = Transaction.__table__, TransactionLine.__table__
    item = lines.c[level]
    baskets = (
        sa.select(lines.c.transaction_id, item.label("item")).distinct()
        .join(sales, sales.c.id == lines.c.transaction_id)
        .where(item.is_not(None), *_purchase_conditions(sales, since, until))
        .cte("baskets")
    )
    item_counts = (sa.select(baskets.c.item, sa.func.count().label("baskets"))
                   .group_by(baskets.c.item).cte("item_counts"))
    total = sa.select(sa.func.count(sa.distinct(baskets.c.transaction_id)).label("baskets")).cte("total")
    first, second = baskets.alias("first_item"), baskets.alias("second_item")
    pairs = (
        sa.select(first.c.item.label("x"), second.c.item.label("y"), sa.func.count().label("together"))
        .join(second, sa.and_(second.c.transaction_id == first.c.transaction_id, first.c.item < second.c.item))
        .group_by(first.c.item, second.c.item)
        .having(sa.func.count() >= min_together)
        .cte("pairs")
    )
    directed = sa.union_all(
        sa.select(pairs.c.x.label("antecedent"), pairs.c.y.label("consequent"), pairs.c.together),
        sa.select(pairs.c.y, pairs.c.x, pairs.c.together),
    ).subquery("directed")
    antecedent, consequent = item_counts.alias("antecedent_counts"), item_counts.alias("consequent_counts")
    together = sa.cast(directed.c.together, sa.Float)
    return (
        sa.select(
            sa.literal(level).label("level"), directed.c.antecedent, directed.c.consequent, directed.c.together,
            antecedent.c.baskets.label("antecedent_baskets"), consequent.c.baskets.label("consequent_baskets"),
            total.c.baskets,
            (together / total.c.baskets).label("support"),
            (together / antecedent.c.baskets).label("confidence"),
            (together * total.c.baskets / (sa.cast(antecedent.c.baskets, sa.Float) * consequent.c.baskets))
            .label("lift"),
            sa.literal(computed_at, AssociationRule.computed_at.type).label("computed_at"),
        )
        .join(antecedent, antecedent.c.item == directed.c.antecedent)
        .join(consequent, consequent.c.item == directed.c.consequent)
        .join(total, sa.true())
    )


RULE_COLUMNS = ("level", "antecedent", "consequent", "together", "antecedent_baskets", "consequent_baskets",
                "baskets", "support", "confidence", "lift", "computed_at")


def compute_rules(session: Session, now: datetime, window_days: int = 365, min_together: int = 5,
                  levels: tuple[str, ...] = LEVELS) -> dict[str, int]:
    """Replace the stored rules of each level with those of the `window_days` up to `now`.
    Returns {level: rules stored}. Safe to repeat; flushes, never commits."""
    _one_scoring_at_a_time(session, "crosssell")
    since = now - timedelta(days=window_days)
    stored = {}
    for level in levels:
        session.execute(sa.delete(AssociationRule).where(AssociationRule.level == level))
        session.execute(sa.insert(AssociationRule).from_select(
            list(RULE_COLUMNS), rules_select(level, since, now, min_together, now)))
        stored[level] = session.scalar(
            sa.select(sa.func.count()).select_from(AssociationRule).where(AssociationRule.level == level))
    session.expire_all()
    return stored


def next_purchase_suggestions(session: Session, member_id: int, now: datetime, *, level: str = "sku",
                              limit: int = 5, window_days: int = 365) -> list[dict]:
    """What to offer a member next: items that baskets holding something they bought also hold,
    more often than chance (lift > 1), that they have not bought themselves in the window. Each item
    once, with the rule that recommends it best (confidence, then lift). For the staff console."""
    sales, lines = Transaction.__table__, TransactionLine.__table__
    since = now - timedelta(days=window_days)
    bought = (
        sa.select(lines.c[level])
        .join(sales, sales.c.id == lines.c.transaction_id)
        .where(sales.c.member_id == member_id, lines.c[level].is_not(None),
               *_purchase_conditions(sales, since, now))
    )
    rule = aliased(AssociationRule)
    best_first = sa.func.row_number().over(
        partition_by=rule.consequent,
        order_by=(rule.confidence.desc(), rule.lift.desc(), rule.antecedent))
    candidates = (
        sa.select(rule.consequent, rule.antecedent, rule.together, rule.confidence, rule.lift,
                  best_first.label("choice"))
        .where(rule.level == level, rule.lift > 1, rule.antecedent.in_(bought), rule.consequent.not_in(bought))
        .subquery("candidates")
    )
    rows = session.execute(
        sa.select(candidates.c.consequent, candidates.c.antecedent, candidates.c.together, candidates.c.confidence,
                  candidates.c.lift)
        .where(candidates.c.choice == 1)
        .order_by(candidates.c.confidence.desc(), candidates.c.lift.desc(), candidates.c.consequent)
        .limit(limit)
    ).all()
    return [{"item": item, "because_of": because, "together": together, "confidence": confidence, "lift": lift}
            for item, because, together, confidence, lift in rows]


def top_pairs(session: Session, *, level: str = "sku", limit: int = 10) -> list[dict]:
    """The pairs most often bought together (then by lift), each pair once with both confidences.
    For the dashboard."""
    forward, backward = aliased(AssociationRule), aliased(AssociationRule)
    rows = session.execute(
        sa.select(forward.antecedent, forward.consequent, forward.together, forward.support, forward.lift,
                  forward.confidence, backward.confidence)
        .join(backward, sa.and_(backward.level == forward.level, backward.antecedent == forward.consequent,
                                backward.consequent == forward.antecedent))
        .where(forward.level == level, forward.antecedent < forward.consequent)
        .order_by(forward.together.desc(), forward.lift.desc(), forward.antecedent, forward.consequent)
        .limit(limit)
    ).all()
    return [{"first": first, "second": second, "together": together, "support": support, "lift": lift,
             "confidence_first_to_second": ab, "confidence_second_to_first": ba}
            for first, second, together, support, lift, ab, ba in rows]
