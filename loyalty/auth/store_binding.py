"""Which store an API key acts in. docs/api.md binds every key to one store: a sale or an enrolment that
names a store takes the key's own, and naming any other is forbidden. The one rule, for every path
that accepts a client-named store (a sale, each item of a batch, an enrolment's home store)."""

from loyalty.auth.models import ApiClient, Store
from loyalty.auth.services import ApiCaller, StoreCopy
from loyalty.errors import Forbidden


def store_for_key(client: ApiClient | ApiCaller, store_code: str | None) -> Store | StoreCopy:
    """The store `client` acts in when a request names `store_code` (or none): its own. Any other
    code, of a store that exists or not, is Forbidden, so a key cannot learn which codes exist
    either. No key is made for several stores; one that were would be checked against its list here."""
    store = client.store
    if store_code is not None and store_code != store.code:
        raise Forbidden(f"this API key is bound to store {store.code!r} and cannot act in {store_code!r}")
    return store
