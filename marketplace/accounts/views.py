"""Sign-up, log-in/out, email verification and password reset pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from marketplace.accounts import services
from marketplace.accounts.forms import (
    ForgotPasswordForm,
    LoginForm,
    NewApiTokenForm,
    ResetPasswordForm,
    SignUpForm,
)
from marketplace.accounts.models import UserRole
from marketplace.db import get_session, transaction
from marketplace.extensions import limiter, rate_limit_key
from marketplace.forms import ConfirmForm
from marketplace.security import BadToken, login_required_any, role_required

ResponseValue = Response | str | tuple[str, int]

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _submitted_email() -> str:
    return rate_limit_key((request.form.get("email") or "").strip().lower()[:254] or "-")


def home_for(role: str) -> str:
    return {
        "artist": url_for("artists.dashboard"),
        "buyer": url_for("buyers.organization"),
        "admin": url_for("site.admin"),
    }.get(role, url_for("site.index"))


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths, so ?next= cannot send people elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def signup() -> ResponseValue:
    """Public."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user.role))
    form = SignUpForm()
    status = 200
    if form.validate_on_submit():
        try:
            with transaction() as session:
                user = services.sign_up(
                    session,
                    email=form.email.data or "",
                    password=form.password.data or "",
                    role=UserRole(form.role.data),
                    display_name=form.display_name.data or "",
                    organization_name=form.organization_name.data,
                    join_code=form.join_code.data,
                )
        except services.SignUpRejected as exc:
            _add_errors(form, exc.problems)
            status = 409 if exc.only_email_taken else 422
        except services.EmailTaken as exc:
            form.email.errors = [str(exc)]
            status = 409
        else:
            login_user(user)
            flash(f"Welcome! We sent a confirmation link to {user.email}.", "success")
            return redirect(home_for(user.role))
    elif form.is_submitted():
        # The form's checks failed; add the service's, so every problem shows at once.
        _add_errors(
            form,
            services.sign_up_problems(
                get_session(),
                email=form.email.data or "",
                password=form.password.data or "",
                role=form.role.data,
                display_name=form.display_name.data or "",
                organization_name=form.organization_name.data,
                join_code=form.join_code.data,
            ),
        )
        status = 422
    return render_template("accounts/signup.html", form=form), status


def _add_errors(form: SignUpForm, problems: dict[str, str]) -> None:
    """Show each problem beside its field, unless the form already says what is wrong there."""
    for name, message in problems.items():
        field = getattr(form, name)
        if not field.errors:
            field.errors = [message]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_submitted_email, scope="login-email")
def login() -> ResponseValue:
    """Public. Throttled per address and per account to slow password guessing."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            with transaction() as session:
                user = services.authenticate(
                    session, form.email.data or "", form.password.data or ""
                )
        except services.InvalidCredentials as exc:
            form.form_errors.append(str(exc))
            status = 401
        else:
            login_user(user, remember=bool(form.remember.data))
            flash("You are logged in.", "success")
            return redirect(_safe_next(request.args.get("next")) or home_for(user.role))
    elif form.is_submitted():
        status = 422
    return render_template("accounts/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required_any
def logout() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit():
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for("site.index"))


@bp.route("/verify/<token>")
def verify_email(token: str) -> ResponseValue:
    """Public: the link from the verification mail is the credential."""
    try:
        with transaction() as session:
            user = services.verify_email(session, token)
    except BadToken as exc:
        return render_template("accounts/bad_link.html", message=str(exc), resend=True), 400
    flash("Thank you, your email address is confirmed.", "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(home_for(user.role))
    return redirect(url_for("accounts.login"))


@bp.route("/verify/resend", methods=["POST"])
@login_required_any
@limiter.limit("5 per hour")
def resend_verification() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit() and not current_user.is_verified:
        with transaction() as session:
            services.queue_verification_email(session, current_user.id)
        flash(f"We sent a new confirmation link to {current_user.email}.", "info")
    return redirect(home_for(current_user.role))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def forgot_password() -> ResponseValue:
    """Public. Answers the same whether or not the account exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        with transaction() as session:
            services.request_password_reset(session, form.email.data or "")
        flash("If an account uses that address, we sent it a link to reset the password.", "info")
        return redirect(url_for("accounts.login"))
    status = 422 if form.is_submitted() else 200
    return render_template("accounts/forgot_password.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseValue:
    """Public: the signed, expiring, single-use link is the credential."""
    try:
        services.user_for_reset_token(get_session(), token)
    except BadToken as exc:
        return render_template("accounts/bad_link.html", message=str(exc), resend=False), 400
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with transaction() as session:
                user = services.reset_password(session, token, form.password.data or "")
        except services.WeakPassword as exc:
            form.password.errors = [str(exc)]
            status = 422
        except BadToken as exc:
            return render_template("accounts/bad_link.html", message=str(exc), resend=False), 400
        else:
            logout_user()
            flash("Your password is changed. Log in with the new one.", "success")
            return redirect(url_for("accounts.login", email=user.email))
    elif form.is_submitted():
        status = 422
    return render_template("accounts/reset_password.html", form=form), status


# --- API tokens (an artist's own, or a buyer's acting for the organization) -----------------


def _render_tokens(
    form: NewApiTokenForm, new_token: str | None = None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "accounts/tokens.html",
        form=form,
        confirm=ConfirmForm(),
        tokens=services.list_api_tokens(get_session(), current_user),
        new_token=new_token,
    ), status


@bp.route("/tokens", methods=["GET", "POST"])
@role_required("artist", "buyer")
def api_tokens() -> ResponseReturnValue:
    if request.method == "GET":
        return _render_tokens(NewApiTokenForm())
    form = NewApiTokenForm()
    if not form.validate_on_submit():
        return _render_tokens(form, status=422)
    try:
        with transaction() as session:
            issued = services.create_api_token(session, current_user, form.name.data or "")
    except services.AccountError as exc:
        form.name.errors = [str(exc)]
        return _render_tokens(form, status=422)
    flash("Token created. Copy it now: it is shown only once.", "success")
    return _render_tokens(NewApiTokenForm(formdata=None), new_token=issued.plaintext, status=201)


@bp.route("/tokens/<id:token_id>/revoke", methods=["POST"])
@role_required("artist", "buyer")
def revoke_api_token(token_id: int) -> Response:
    if ConfirmForm().validate_on_submit():
        try:
            with transaction() as session:
                token = services.revoke_api_token(session, current_user, token_id)
        except services.TokenNotFound:
            abort(404)
        flash(f"Token “{token.name}” is revoked.", "info")
    return redirect(url_for("accounts.api_tokens"))
