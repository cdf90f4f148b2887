"""Staff login security: failed logins throttled per account and per
address (django-axes), a refused second factor counting as a failure, the
unlock by a superuser; the reset of a lost second-factor device; backup
codes."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.models import AuditAction, AuditEntry
from core.services import backup_codes_generate, login_unlock, second_factor_reset

pytestmark = pytest.mark.django_db

LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture(autouse=True)
def second_factor(settings):
    settings.ADMIN_REQUIRE_OTP = True


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"


def backup(user):
    return StaticDevice.objects.get(user=user)


def login(client, username, password, token="", device=None, address="127.0.0.1"):
    data = {"username": username, "password": password, "otp_token": token}
    if device is not None:
        data["otp_device"] = device.persistent_id
    return client.post("/admin/login/?next=/admin/", data, REMOTE_ADDR=address)


@pytest.fixture
def phone(owner):
    return TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)


def test_an_agent_without_a_second_factor_cannot_reach_the_admin(client, colleague):
    response = login(client, "colleague", "pw-colleague-1234", "123456")
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/").status_code == 302
    client.force_login(colleague)  # password alone: not verified by a device
    assert client.get("/admin/tickets/inquiry/").status_code == 302


def test_wrong_passwords_lock_the_account_and_are_recorded(client, owner, phone):
    for _ in range(LIMIT - 1):
        assert login(client, "owner", "wrong").status_code == 200
    locked = login(client, "owner", "wrong")
    assert locked.status_code == 429
    assert "ロック" in locked.content.decode()
    attempt = AccessAttempt.objects.get(username="owner")
    assert attempt.failures_since_start == LIMIT
    assert attempt.ip_address == "127.0.0.1"
    assert AccessFailureLog.objects.filter(username="owner").count() == LIMIT
    # the right password and token are refused too, from another address
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone, "10.0.0.9")
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_failures_from_one_address_lock_it_for_every_account(client, owner, phone):
    for n in range(LIMIT):
        login(client, f"guess{n}", "wrong", address="10.0.0.7")
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone, "10.0.0.7")
    assert response.status_code == 429
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone, "10.0.0.8")
    assert response.status_code == 302


def test_a_wrong_one_time_password_counts_as_a_failed_login(client, owner, phone):
    wrong = f"{(int(current_token(phone)) + 1) % 1000000:06d}"
    for _ in range(LIMIT):
        login(client, "owner", "pw-owner-1234", wrong, phone)
    assert AccessAttempt.objects.get(username="owner").failures_since_start == LIMIT
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone, "10.0.0.9")
    assert response.status_code == 429


def test_the_lock_ends_after_the_cool_off(client, owner, phone):
    for _ in range(LIMIT):
        login(client, "owner", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone)
    assert response.status_code == 302


def test_a_superuser_unlocks_a_locked_account(client, owner, phone, django_user_model, settings):
    for _ in range(LIMIT):
        login(client, "owner", "wrong")
    root = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    settings.ADMIN_REQUIRE_OTP = False  # the superuser's own login is not under test
    admin_client = client.__class__()
    admin_client.force_login(root)
    attempt = AccessAttempt.objects.get(username="owner")
    response = admin_client.post(
        "/admin/core/staffmember/",
        {"action": "login_unlock_action", "_selected_action": [owner.pk]},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert LogEntry.objects.filter(object_id=str(owner.pk), user=root).exists()
    settings.ADMIN_REQUIRE_OTP = True
    response = login(client, "owner", "pw-owner-1234", current_token(phone), phone)
    assert response.status_code == 302


def test_only_a_superuser_may_unlock_a_login(client, owner, colleague, settings):
    for _ in range(LIMIT):
        login(client, "colleague", "wrong")
    settings.ADMIN_REQUIRE_OTP = False  # the second factor is not under test here
    manager = client.__class__()
    manager.force_login(owner)
    page = manager.get("/admin/core/staffmember/")
    assert page.status_code == 200
    assert "login_unlock_action" not in page.content.decode()
    manager.post(
        "/admin/core/staffmember/",
        {"action": "login_unlock_action", "_selected_action": [colleague.pk]},
    )
    with pytest.raises(ValidationError):
        login_unlock(user=colleague, actor=owner)
    assert AccessAttempt.objects.filter(username="colleague").exists()


# --- second factor reset and backup codes ---------------------------------------


def logged_in(client_class, username, password, device):
    client = client_class()
    response = login(client, username, password, current_token(device), device)
    assert response.status_code == 302
    return client


def test_a_manager_resets_a_lost_device_and_the_member_must_enrol_again(
    client, owner, phone, colleague
):
    lost = TOTPDevice.objects.create(user=colleague, name="lost phone", confirmed=True)
    backup_codes_generate(user=colleague, actor=colleague)
    member = logged_in(client.__class__, "colleague", "pw-colleague-1234", lost)
    manager = logged_in(client.__class__, "owner", "pw-owner-1234", phone)
    assert "second_factor_reset_action" in manager.get("/admin/core/staffmember/").content.decode()

    response = manager.post(
        "/admin/core/staffmember/",
        {"action": "second_factor_reset_action", "_selected_action": [colleague.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=colleague).exists()
    assert not StaticDevice.objects.filter(user=colleague).exists()
    assert TOTPDevice.objects.filter(user=owner).exists()
    entry = LogEntry.objects.filter(object_id=str(colleague.pk)).latest("action_time")
    assert entry.user == owner
    # and the audit trail says who reset whose second factor
    audits = AuditEntry.objects.filter(action=AuditAction.CHANGE, user=owner)
    assert audits.filter(what__startswith=f"{colleague.get_username()}: ").exists()
    assert member.get("/admin/").status_code == 302  # the session is no longer verified
    # after a new enrolment they get in again
    call_command("otp_enroll", "colleague")
    new = TOTPDevice.objects.get(user=colleague)
    logged_in(client.__class__, "colleague", "pw-colleague-1234", new)


def test_an_agent_can_neither_reset_a_second_factor_nor_see_colleagues(
    client, owner, phone, colleague
):
    device = TOTPDevice.objects.create(user=colleague, name="phone", confirmed=True)
    agent = logged_in(client.__class__, "colleague", "pw-colleague-1234", device)
    page = agent.get("/admin/core/staffmember/")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [colleague]
    assert "second_factor_reset_action" not in page.content.decode()
    agent.post(
        "/admin/core/staffmember/",
        {"action": "second_factor_reset_action", "_selected_action": [owner.pk]},
    )
    assert TOTPDevice.objects.filter(user=owner).exists()
    with pytest.raises(ValidationError):
        second_factor_reset(user=owner, actor=colleague)


def test_a_manager_cannot_reset_a_superusers_second_factor(owner, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    with pytest.raises(ValidationError):
        second_factor_reset(user=root, actor=owner)
    assert TOTPDevice.objects.filter(user=root).exists()


def test_backup_codes_are_shown_once_and_each_works_once(client, owner, phone):
    manager = logged_in(client.__class__, "owner", "pw-owner-1234", phone)
    assert manager.get("/admin/core/staffmember/backup-codes/").context["codes"] is None
    page = manager.post("/admin/core/staffmember/backup-codes/")
    codes = page.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert code in page.content.decode()
    assert LogEntry.objects.filter(object_id=str(owner.pk), user=owner).exists()

    first = client.__class__()
    assert login(first, "owner", "pw-owner-1234", codes[0], backup(owner)).status_code == 302
    assert first.get("/admin/").status_code == 200
    again = client.__class__()
    assert (
        login(again, "owner", "pw-owner-1234", codes[0], backup(owner)).status_code == 200
    )  # used
    assert again.get("/admin/").status_code == 302
    # a new set cancels the old one
    manager.post("/admin/core/staffmember/backup-codes/")
    assert (
        login(client.__class__(), "owner", "pw-owner-1234", codes[1], backup(owner)).status_code
        == 200
    )


def test_otp_enroll_issues_ten_backup_codes(client, owner, capsys):
    call_command("otp_enroll", "owner", "--backup-codes")
    codes = [line for line in capsys.readouterr().out.splitlines()[1:] if line]
    assert len(codes) == 10
    assert StaticToken.objects.filter(device__user=owner).count() == 10
    response = login(client, "owner", "pw-owner-1234", codes[3], backup(owner))
    assert response.status_code == 302, response.context["form"].errors


def test_behind_the_proxy_each_client_address_counts_on_its_own(client, owner, phone, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    for n in range(LIMIT):
        client.post(
            "/admin/login/",
            {"username": f"guess{n}", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.5",
        )
    assert AccessAttempt.objects.filter(ip_address="203.0.113.5").exists()
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "owner",
            "password": "pw-owner-1234",
            "otp_token": current_token(phone),
            "otp_device": phone.persistent_id,
        },
        REMOTE_ADDR="10.0.0.1",  # the same proxy
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert response.status_code == 302
