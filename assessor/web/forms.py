"""WTForms for the fixed-shape forms. Every form carries a CSRF token (Flask-WTF); the per-criterion forms
(self-assessment, review) are validated by assessor.reviews and rendered by hand with `csrf_token()`."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from assessor.domain.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, AccountError, check_email
from assessor.domain.models import ROLES

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def choice(value: str, label: str):
    return SelectChoice(value, label) if SelectChoice is not None else (value, label)


def new_password_fields(label: str) -> tuple[PasswordField, PasswordField]:
    """A password to choose and its repetition, with the account rules' lengths."""
    password = PasswordField(label, [
        DataRequired(message="choose a password"),
        Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
               message=f"use {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"),
    ])
    confirm = PasswordField(f"Repeat the {label.lower()}", [DataRequired(message="repeat the password"),
                                                            EqualTo("password", message="the two passwords differ")])
    return password, confirm


class SignupForm(FlaskForm):
    email = StringField("E-mail", [DataRequired(message="enter your e-mail address"), Length(max=254)])
    name = StringField("Your name (optional)", [Optional(), Length(max=120)])
    password, confirm = new_password_fields("Password")

    def validate_email(self, field) -> None:
        """The account rules' address checks, with the other fields' in one round (not after them)."""
        try:
            check_email(field.data or "")
        except AccountError as error:
            raise ValidationError(str(error)) from None


class LoginForm(FlaskForm):
    email = StringField("E-mail", [DataRequired(message="enter your e-mail address"), Length(max=254)])
    password = PasswordField("Password", [DataRequired(message="enter your password"),
                                          Length(max=MAX_PASSWORD_LENGTH)])


class SubmitForm(FlaskForm):
    rubric = SelectField("Course rubric", choices=[], validate_choice=True)
    source = StringField("Repository URL", [DataRequired(message="enter the URL of your git repository"),
                                            Length(max=1024, message="that URL is too long")])
    ref = StringField("Branch, tag or commit (optional; default: the default branch)", [Optional(), Length(max=255)])
    replace_pending = BooleanField("Replace the attempt waiting for review with this one once it is assessed")


class RepositoryKeyForm(FlaskForm):
    host = SelectField("Git host", validate_choice=True)
    repository = StringField("Repository (owner/name)", [DataRequired(message="give the repository as owner/name"),
                                                         Length(max=200)])


class RepositoryTokenForm(FlaskForm):
    host = SelectField("Git host", validate_choice=True)
    repository = StringField("Repository (owner/name)", [DataRequired(message="give the repository as owner/name"),
                                                         Length(max=200)])
    token = PasswordField("Read-only access token", [DataRequired(message="paste the token"), Length(max=400)])


class RepositoryLinkForm(FlaskForm):
    rubric = SelectField("Capstone", validate_choice=True)
    source = StringField("Repository address", [DataRequired(message="give the repository's address"),
                                                Length(max=1024)])
    provider = SelectField("Git host software", validate_choice=True)
    branch = StringField("Branch (a push to it is assessed)", [Optional(), Length(max=255)])
    tag_pattern = StringField("or tags matching (for example v*)", [Optional(), Length(max=255)])


class ActionForm(FlaskForm):
    """A button that changes state: only the CSRF token."""


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserForm(FlaskForm):
    email = StringField("E-mail", [DataRequired(message="enter an e-mail address"), Length(max=254)])
    name = StringField("Name", [Optional(), Length(max=120)])
    role = SelectField("Role", choices=[choice(role, role) for role in ROLES])
    password = PasswordField("Password (leave empty to keep the current one)",
                             [Optional(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)])
    courses = MultiCheckboxField("Courses this mentor reviews", choices=[])
    active = BooleanField("Account active", default=True)


def attach_error(form: FlaskForm, field: str | None, message: str) -> None:
    """Show a message from the plain modules next to its field, or above the form when there is no such field."""
    target = form._fields.get(field) if field else None
    if target is not None:
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


class ForgotPasswordForm(FlaskForm):
    email = StringField("E-mail", [DataRequired(message="enter your e-mail address"), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password, confirm = new_password_fields("New password")


class NotificationsForm(FlaskForm):
    notify_assessment = BooleanField("When an assessment of my capstone finishes (with the outcome)")
    notify_review = BooleanField("When a mentor approves my capstone or asks for changes")
    notify_certificate = BooleanField("When my certificate is issued")
    notify_digest = BooleanField("Mentors: a daily digest of the attempts waiting for review")
