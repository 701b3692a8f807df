"""Accounts and who may do what: stores, API keys for POS systems, staff users and their roles.

- `models.py`: Store, ApiClient (hashed keys, scopes), StaffUser, AuditEvent, the API rate-limit counters.
- `services.py`: creating, revoking and changing them, each change audited; password limits.
- `store_binding.py`: which store an API key acts in.
- `audit_trail.py`: reading the audit trail (loyalty/audit.py writes it).
"""
