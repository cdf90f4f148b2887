import pytest
from django.core.management import call_command
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_factor(settings):
    settings.ADMIN_REQUIRE_OTP = True


def login(client, username, password, token="", device=None):
    data = {"username": username, "password": password, "otp_token": token}
    if device is not None:
        data["otp_device"] = device.persistent_id
    return client.post("/admin/login/?next=/admin/", data)


def test_password_alone_does_not_open_the_admin(client, owner, second_factor):
    TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)
    response = login(client, "owner", "pw-owner-1234")
    assert response.status_code == 200  # the login form again, with an error
    assert client.get("/admin/").status_code == 302


def test_password_and_a_current_totp_token_open_the_admin(client, owner, second_factor):
    device = TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)
    token = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"
    response = login(client, "owner", "pw-owner-1234", token, device)
    assert response.status_code == 302, response.context["form"].errors
    assert client.get("/admin/").status_code == 200


def test_a_session_logged_in_without_otp_is_not_admitted(client, owner, second_factor):
    client.force_login(owner)  # authenticated, but not verified by a device
    assert client.get("/admin/crm/customer/").status_code == 302


def test_without_the_setting_a_password_suffices(client, owner):
    assert login(client, "owner", "pw-owner-1234").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_otp_enroll_gives_a_staff_member_a_device_and_a_qr_code(owner, outsider, capsys):
    call_command("otp_enroll", "owner")
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).count() == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not staff"):
        call_command("otp_enroll", "outsider")
