"""What the marketer's dashboard and the staff console know about members, computed by jobs.

- `models.py`: RFM snapshots, bought-together rules, job runs.
- `rfm.py`: RFM scoring in the database; `crosssell.py`: bought-together rules.
- `churn.py`: churn scoring wired to the database; `churn_models.py` the models behind it, over
  `purchase_log.py` (purchases as arrays) and `bgnbd.py` (the BG/NBD model); no database in those three.
- `services.py`: the dashboard's figures; `wording.py`: figures in the reader's language; `tasks.py`: the jobs.
"""
