"""Members: who they are, how they are found and what they may ask of their data.

- `models.py`: Member (number, contact details, consents, scores), ConsentEvent, StaffNote.
- `services.py`: enrolment, finding a member by number or QR token, consents, erasure.
- `portal_services.py`, `staff_services.py`: the rules behind the member portal and the staff console.
- `numbers.py` (member numbers with a Damm check digit), `cards.py` and `qr.py` (rotating QR card
  tokens and their images), `masks.py` (contact details shown half-hidden).
- `gdpr.py` (a copy of a member's data; redaction), `data_access.py` (who viewed whom), `tasks.py`.
"""
