"""Points and the program's rules of exchange.

- `models.py`: the ledger (entries, lots, allocations), program settings, tiers, earning rules.
- `ledger.py`: the wallet: crediting and debiting a member's points lot by lot.
- `program.py`: the settings, tiers and earning rules every sale reads (cached frozen copies);
  `program_changes.py`: changing them, audited.
- `earning.py`: how many points a sale earns; `tiers.py`: moving members between tiers.
- `services.py`: expiry, holds, staff adjustments, verifying the ledger; `tasks.py`: their jobs.
"""
