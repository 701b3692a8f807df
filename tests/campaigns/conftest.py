"""Fixtures for offers and coupons: a `manage` API client and the Campaigns helper."""

import pytest

from tests.campaigns.helpers import Campaigns


@pytest.fixture
def manage(factory):
    """An API client with the manage scope (offers and coupons)."""
    return factory.api_client(scope="manage", name="crm")


@pytest.fixture
def campaigns(app, manage):
    return Campaigns(app, manage)
