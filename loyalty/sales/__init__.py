"""Sales and refunds: the one path every channel takes to record them (the API, its batches, the staff
console, the demo loader).

- `values.py`: `Sale`, `Refund`, `BasketLine`, the typed values a front end builds from JSON or a form.
- `services.py`: `record_sales`, `record_refund`, `get_sale`; every rule about a sale is checked here.
- `models.py`: `Transaction` (a sale or a refund), `TransactionLine`, `IdempotencyRecord` (the stored
  first answers that loyalty/answer_once.py replays).
"""
