"""Insight figures in the reader's language. Scores are stored as figures and codes, never as English
sentences, so a marketer or cashier reading in Chinese reads Chinese."""

import re

from flask_babel import gettext as _
from flask_babel import ngettext

CHURN_FACTS = re.compile(r"^r(\d+) f(\d+) g(\d+|-)$")


def describe_churn_facts(facts: str | None) -> str | None:
    """'r155 f2 g40' (churn_models.churn_facts) as 'no purchase in 155 days; bought 2 times; usual gap
    40 days'. Anything else (scores from before these codes) is shown as it is."""
    if not facts:
        return None
    found = CHURN_FACTS.match(facts)
    if found is None:
        return facts
    recency, frequency, gap = int(found[1]), int(found[2]), found[3]
    parts = [
        _("purchased today") if recency == 0
        else ngettext("no purchase in %(num)d day", "no purchase in %(num)d days", recency),
        _("bought once") if frequency == 1 else ngettext("bought %(num)d time", "bought %(num)d times", frequency),
        _("no usual gap yet") if gap == "-"
        else ngettext("usual gap %(num)d day", "usual gap %(num)d days", int(gap)),
    ]
    # TRANSLATORS: what separates the facts of a churn explanation ("no purchase in 9 days; bought once").
    return _("; ").join(parts)
