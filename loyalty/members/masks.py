"""How a member's contact details are shown to someone who is not the member (a till, a POS): enough to
recognise, not enough to reuse."""


def mask_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) <= 8:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:6] + "*" * (len(phone) - 10) + phone[-4:]
