"""The admin console (/admin/): what an operator needs to run the shop from a browser. Admins only.

- `views.py`: blueprint `admin` (/admin/): overview, stores, staff accounts, API keys (a new key is
  shown once, in the answer to the POST that made it), the audit trail and its data-access view.
- `program_views.py`: blueprint `admin_program` (/admin/program/): the program's settings and tiers,
  a new threshold previewed (members moving up and down) before it is saved.
- `forms.py`: the forms (shape only; money typed in yuan becomes integer fen there).

Views parse a form, call a domain service (auth.services, points.program_changes,
members.data_access, auth.audit_trail), commit once and redirect; the rules live in those services.
Templates are in templates/admin/, styles in static/css/admin.css, the few lines of script (copy a
key, live tier preview) in static/js/admin.js.
"""
