"""Demo data for `loyalty demo`: three Shanghai stores with their staff and POS keys, members with
different shopping habits, and a period of sales and refunds posted through the same services the
POS API uses, so the ledger, lots and tiers are exactly what real traffic would leave behind.

It loads only into a fresh database and refuses otherwise, rather than doubling the data. Like any
CLI command it owns its unit of work; it commits every batch, which keeps memory flat. Every choice
comes from `random.Random(seed)`, so a seed and a day give the same people, baskets, redemptions and
refunds; only what the services draw from `secrets` (member numbers, card secrets, keys) differs.

planning.py decides everything without the database; loading.py posts it through the services.
"""
