"""Churn facts put into words in the reader's language (loyalty/insights/wording.py)."""

from flask_babel import force_locale

from loyalty.insights.wording import describe_churn_facts


def test_churn_facts_read_as_a_sentence_for_a_marketer(app):
    with app.test_request_context():
        assert describe_churn_facts("r155 f2 g40") == "no purchase in 155 days; bought 2 times; usual gap 40 days"
        assert describe_churn_facts("r0 f1 g-") == "purchased today; bought once; no usual gap yet"
        assert describe_churn_facts("r1 f5 g1") == "no purchase in 1 day; bought 5 times; usual gap 1 day"
        assert describe_churn_facts(None) is None
        # Scores written before the codes existed are shown as they were stored.
        assert describe_churn_facts("no purchase for 210 days") == "no purchase for 210 days"


def test_churn_facts_read_in_chinese(app):
    with app.test_request_context(), force_locale("zh"):
        assert describe_churn_facts("r155 f2 g40") == "155 天未购买；购买 2 次；通常间隔 40 天"
        assert describe_churn_facts("r0 f1 g-") == "今天有购买；购买 1 次；尚无通常间隔"
