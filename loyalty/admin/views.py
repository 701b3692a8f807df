"""The admin console's blueprint and its pages: overview, stores, staff accounts, API keys, the audit
trail and the data-access log. Each view parses a form, calls an auth service, commits once and
redirects (or, for a new API key, answers the POST with the key itself, once)."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from loyalty.admin.forms import (
    ROLE_LABELS,
    SCOPE_LABELS,
    ActiveForm,
    ApiKeyForm,
    AuditFilterForm,
    ConfirmForm,
    NewStaffForm,
    PasswordForm,
    RoleForm,
    StoreForm,
)
from loyalty.auth import services
from loyalty.auth.audit_trail import AuditFilter, audit_page, changed_fields
from loyalty.auth.models import StaffUser
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.errors import DomainError, ValidationFailed
from loyalty.extensions import db
from loyalty.members.data_access import VIEW_ACTION, record_member_view
from loyalty.members.services import get_member_by_no
from loyalty.members.staff_services import CONSOLE_CLIENT_PREFIX
from loyalty.web.access import current_staff, staff_required

admin = Blueprint("admin", __name__, url_prefix="/admin")

ID = f"int(max={MAX_ID})"
NO_STORE = {"Cache-Control": "no-store"}
# The pages that record a member.view (members.data_access), as the data-access log names them.
PAGE_LABELS = {
    "staff.member": _l("Staff console: member"),
    "staff.card": _l("Staff console: membership card"),
    "staff.audit": _l("Staff console: member's audit trail"),
    "admin.audit": _l("Admin: audit trail of a member"),
    "admin.access": _l("Admin: data access to a member"),
}


@admin.context_processor
def admin_helpers() -> dict:
    return {"role_label": lambda role: ROLE_LABELS.get(role, role),
            "scope_label": lambda scopes: " + ".join(scopes.split()),
            "page_label": lambda page: PAGE_LABELS.get(page, page or "—"),
            "changed_fields": changed_fields}


def show_refusal(form, error: DomainError, messages: dict) -> None:
    """A service's refusal next to the field it is about, in the reader's language when we know the rule
    (`messages` by field), else as the service said it."""
    for name, said in (error.errors or {"": [error.detail]}).items():
        field = getattr(form, name, None)
        text = messages.get(name) or "; ".join(str(line) for line in said)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, text]
        else:
            form.form_errors.append(text)


# --- overview ------------------------------------------------------------------------------------

@admin.get("/")
@staff_required("admin")
def index():
    stores = services.list_stores(db.session)
    staff = services.list_staff_users(db.session)
    keys = [key for key in _api_keys() if key.revoked_at is None]
    return render_template("admin/index.html", stores=stores, staff=staff, keys=keys)


# --- stores --------------------------------------------------------------------------------------

@admin.get("/stores")
@staff_required("admin")
def stores():
    return _stores_page(StoreForm())


@admin.post("/stores")
@staff_required("admin")
def create_store():
    form = StoreForm()
    if not form.validate():
        return _stores_page(form, status=422)
    try:
        store = services.create_store(db.session, code=form.code.data.strip(), name=form.name.data.strip(),
                                      timezone=form.timezone.data, actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        show_refusal(form, error, {"code": _("A store with this code already exists."),
                                   "timezone": _("Choose a time zone from the list.")})
        return _stores_page(form, status=422)
    db.session.commit()
    flash(_("Store %(code)s created.", code=store.code), "success")
    return redirect(url_for(".stores"))


def _stores_page(form: StoreForm, status: int = 200):
    return render_template("admin/stores.html", form=form, stores=services.list_stores(db.session)), status


# --- staff accounts ------------------------------------------------------------------------------

STAFF_RULES = {
    "email": _l("A staff account with this email already exists."),
    "password": _l("At least 8 characters."),
    "role": _l("Choose a role from the list."),
    "store": _l("A cashier works at a store: choose one."),
    "store_code": _l("Choose a store from the list."),
}
# auth.services names the account when it refuses to leave the system without an active admin.
LAST_ADMIN = _l("This is the last active admin: someone must be left who can run the admin console.")


def _staff_or_404(staff_id: int) -> StaffUser:
    found = db.session.get(StaffUser, staff_id)
    if found is None:
        abort(404)
    return found


@admin.get("/staff")
@staff_required("admin")
def staff():
    return _staff_page(NewStaffForm(stores=services.list_stores(db.session)))


@admin.post("/staff")
@staff_required("admin")
def create_staff():
    form = NewStaffForm(stores=services.list_stores(db.session))
    if not form.validate():
        return _staff_page(form, status=422)
    try:
        store = services.store_by_code(db.session, form.store.data) if form.store.data else None
        user = services.create_staff_user(db.session, email=form.email.data, role=form.role.data,
                                          password=form.password.data, store=store, actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        show_refusal(form, error, STAFF_RULES)
        return _staff_page(form, status=422)
    db.session.commit()
    flash(_("Account %(email)s created.", email=user.email), "success")
    return redirect(url_for(".staff"))


def _staff_page(form: NewStaffForm, status: int = 200):
    return render_template("admin/staff.html", form=form, staff=services.list_staff_users(db.session)), status


@admin.get(f"/staff/<{ID}:staff_id>")
@staff_required("admin")
def staff_account(staff_id: int):
    return _account_page(_staff_or_404(staff_id))


def _role_form(account: StaffUser, **kwargs) -> RoleForm:
    return RoleForm(stores=services.list_stores(db.session), role=account.role,
                    store=account.store.code if account.store else "", **kwargs)


def _account_page(account: StaffUser, *, role_form=None, password_form=None, status: int = 200):
    return render_template("admin/staff_account.html", account=account,
                           role_form=role_form or _role_form(account, formdata=None),
                           active_form=ActiveForm(formdata=None, active="0" if account.active else "1"),
                           password_form=password_form or PasswordForm(formdata=None)), status


@admin.post(f"/staff/<{ID}:staff_id>/role")
@staff_required("admin")
def set_role(staff_id: int):
    account = _staff_or_404(staff_id)
    form = _role_form(account)
    if not form.validate():
        return _account_page(account, role_form=form, status=422)
    before = (account.role, account.store_id)
    try:
        store = services.store_by_code(db.session, form.store.data) if form.store.data else None
        services.set_staff_role(db.session, account, form.role.data, store=store, actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        show_refusal(form, error, {**STAFF_RULES, "email": LAST_ADMIN})
        return _account_page(_staff_or_404(staff_id), role_form=form, status=422)
    db.session.commit()
    if before == (account.role, account.store_id):
        flash(_("Nothing was changed."), "info")
    else:
        flash(_("%(email)s is now %(role)s.", email=account.email, role=ROLE_LABELS[account.role]), "success")
    return redirect(url_for(".staff_account", staff_id=staff_id))


@admin.post(f"/staff/<{ID}:staff_id>/active")
@staff_required("admin")
def set_active(staff_id: int):
    account = _staff_or_404(staff_id)
    form = ActiveForm()
    if not form.validate():
        abort(400)
    try:
        services.set_staff_active(db.session, account, form.active.data == "1", actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        flash(str(LAST_ADMIN) if "email" in (error.errors or {}) else error.detail, "error")
        return redirect(url_for(".staff_account", staff_id=staff_id))
    db.session.commit()
    flash(_("%(email)s can sign in again.", email=account.email) if account.active
          else _("%(email)s is disabled and signed out everywhere.", email=account.email), "success")
    return redirect(url_for(".staff_account", staff_id=staff_id))


@admin.post(f"/staff/<{ID}:staff_id>/password")
@staff_required("admin")
def set_password(staff_id: int):
    account = _staff_or_404(staff_id)
    form = PasswordForm()
    if not form.validate():
        return _account_page(account, password_form=form, status=422)
    try:
        services.set_staff_password(db.session, account, form.password.data, actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        show_refusal(form, error, STAFF_RULES)
        return _account_page(account, password_form=form, status=422)
    db.session.commit()
    flash(_("New password set for %(email)s; their other sessions have ended.", email=account.email), "success")
    if account.id == current_staff().id:
        # The new password ended this session too (web.access: credential stamps).
        return redirect(url_for("staff_auth.login", next=url_for(".staff_account", staff_id=staff_id)))
    return redirect(url_for(".staff_account", staff_id=staff_id))


# --- API keys ------------------------------------------------------------------------------------

@admin.get("/keys")
@staff_required("admin")
def keys():
    return _keys_page(ApiKeyForm(stores=services.list_stores(db.session)))


@admin.post("/keys")
@staff_required("admin")
def create_key():
    """The new key is in this answer's page and nowhere else: not stored, not flashed into a cookie.
    Reloading the page cannot show it again (the browser would post again, making another key)."""
    form = ApiKeyForm(stores=services.list_stores(db.session))
    if not form.validate():
        return _keys_page(form, status=422)
    try:
        store = services.store_by_code(db.session, form.store.data)
        client, key = services.create_api_client(db.session, name=form.name.data.strip(), store=store,
                                                 scope=form.scope.data, actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        show_refusal(form, error, {"store_code": _("Choose a store from the list."),
                                   "scope": _("Choose a scope from the list.")})
        return _keys_page(form, status=422)
    db.session.commit()
    fresh = ApiKeyForm(formdata=None, stores=services.list_stores(db.session))
    return _keys_page(fresh, new_client=client, new_key=key, headers=NO_STORE)


def _keys_page(form: ApiKeyForm, *, new_client=None, new_key: str | None = None, status: int = 200,
               headers: dict | None = None):
    return render_template("admin/keys.html", form=form, keys=_api_keys(), new_client=new_client,
                           new_key=new_key, scope_labels=SCOPE_LABELS), status, headers or {}


def _api_keys() -> list:
    # The staff console's own clients (one per store, created on first use) have no key anyone holds.
    return [key for key in services.list_api_clients(db.session) if not key.name.startswith(CONSOLE_CLIENT_PREFIX)]


def _key_or_404(prefix: str):
    found = next((key for key in _api_keys() if key.key_prefix == prefix), None)
    if found is None:
        abort(404)
    return found


@admin.get("/keys/<prefix>/revoke")
@staff_required("admin")
def confirm_revoke(prefix: str):
    return render_template("admin/revoke.html", key=_key_or_404(prefix), form=ConfirmForm())


@admin.post("/keys/<prefix>/revoke")
@staff_required("admin")
def revoke_key(prefix: str):
    key = _key_or_404(prefix)
    form = ConfirmForm()
    if not form.validate():
        abort(400)
    if key.revoked_at is None:
        try:
            services.revoke_api_client_by_prefix(db.session, prefix, actor=current_staff(), now=utcnow())
        except DomainError as error:
            db.session.rollback()
            flash(error.detail, "error")
            return redirect(url_for(".keys"))
        db.session.commit()
    flash(_("Key %(prefix)s… (%(name)s) is revoked: it no longer works.", prefix=prefix, name=key.name), "success")
    return redirect(url_for(".keys"))


# --- audit trail and data access -----------------------------------------------------------------

@admin.get("/audit")
@staff_required("admin")
def audit():
    return _trail_page("admin/audit.html", access=False)


@admin.get("/access")
@staff_required("admin")
def access():
    """The data-access log: the audit trail's member.view events, as a privacy officer reads them."""
    return _trail_page("admin/access.html", access=True)


def _trail_page(template: str, *, access: bool):
    form = AuditFilterForm(request.args)
    if not form.validate():
        return render_template(template, form=form, page=None, member=None), 422
    action = VIEW_ACTION if access else (form.action.data or "").strip()
    where = AuditFilter(action=action, actor=form.actor.data or "", member_no=(form.member.data or "").strip(),
                        leave_out="" if action == VIEW_ACTION else VIEW_ACTION)
    member = get_member_by_no(db.session, where.member_no) if where.member_no else None
    if member is not None:
        # One member's history is a look at that member: it goes in the data-access log too.
        record_member_view(db.session, staff=current_staff(), member=member, page=request.endpoint, now=utcnow())
        db.session.commit()
    before = request.args.get("before", type=int)
    page = audit_page(db.session, where, before=before if before and 0 < before <= MAX_ID else None)
    args = {name: value for name, value in request.args.items() if name not in ("before", "lang") and value}
    return render_template(template, form=form, page=page, member=member, args=args,
                           paged=before is not None)
