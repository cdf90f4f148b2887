import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.normalize import (
    email_normalize,
    kana_normalize,
    phone_display,
    phone_normalize,
    postal_code_normalize,
)


def test_phone_formats_of_one_mobile_number_normalise_alike():
    forms = [
        "090-1234-5678",
        "09012345678",
        "090 1234 5678",
        "０９０－１２３４－５６７８",
        "+81 90-1234-5678",
        "+81-90-1234-5678",
        "+81 (0)90 1234 5678",
        "819012345678",
        "(090)1234-5678",
    ]
    assert {phone_normalize(form) for form in forms} == {"09012345678"}


def test_landline_keeps_its_ten_digits():
    assert phone_normalize("03-1234-5678") == "0312345678"
    assert phone_normalize("+81 3 1234 5678") == "0312345678"


def test_not_a_japanese_number_normalises_to_empty():
    for raw in ["", "1234", "+1 415 555 0100", "abc", "0000000000", "090-1234-56789-1"]:
        assert phone_normalize(raw) == ""


def test_email_is_trimmed_and_lower_cased_and_full_width_folded():
    assert email_normalize("  Taro.Yamada@Example.JP ") == "taro.yamada@example.jp"
    assert email_normalize("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ") == "taro@example.jp"
    assert email_normalize("not-an-address") == ""
    assert email_normalize("a@localhost") == ""


def test_kana_in_hiragana_half_width_and_katakana_normalise_to_katakana():
    assert kana_normalize("やまだ") == "ヤマダ"
    assert kana_normalize("ﾔﾏﾀﾞ") == "ヤマダ"
    assert kana_normalize("ヤマダ　タロウ") == "ヤマダ タロウ"
    assert kana_normalize("ゔぁ") == "ヴァ"


def test_postal_code_takes_any_width_and_mark():
    assert postal_code_normalize("〒１５０－０００１") == "150-0001"
    assert postal_code_normalize("1500001") == "150-0001"
    assert postal_code_normalize("150-001") == ""


@given(st.text())
def test_phone_normalize_is_idempotent_and_total(raw):
    once = phone_normalize(raw)
    assert phone_normalize(once) == once
    assert once == "" or (once.isdigit() and once[0] == "0" and len(once) in (10, 11))


@given(st.text())
def test_kana_normalize_is_idempotent(raw):
    once = kana_normalize(raw)
    assert kana_normalize(once) == once


@given(
    st.text(
        alphabet="ぁあぃいぅうぇえぉおかがきぎくぐけげこごさざしじすずせぜそぞただちぢっつづてでとどなにぬねのはばぱひびぴふぶぷへべぺほぼぽまみむめもゃやゅゆょよらりるれろゎわゐゑをんゔ",
        min_size=1,
    )
)
def test_every_hiragana_reading_becomes_pure_katakana(raw):
    assert all("\u30a0" <= ch <= "\u30ff" for ch in kana_normalize(raw))


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        # mobiles, IP phones, M2M: 3-4-4
        ("09012345678", "090-1234-5678"),
        ("080 1234 5678", "080-1234-5678"),
        ("070-1234-5678", "070-1234-5678"),
        ("05058881234", "050-5888-1234"),
        ("02012345678", "020-1234-5678"),
        # two-digit area codes: Tokyo, Osaka, Kashiwa / Tokorozawa
        ("0312345678", "03-1234-5678"),
        ("0667890123", "06-6789-0123"),
        ("0471671111", "04-7167-1111"),
        ("0429981111", "04-2998-1111"),
        # three-digit area codes
        ("0112112111", "011-211-2111"),
        ("0529611111", "052-961-1111"),
        ("0426263111", "042-626-3111"),
        ("0988670111", "098-867-0111"),
        # four- and five-digit area codes
        ("0422515131", "0422-51-5131"),
        ("0466251111", "0466-25-1111"),
        ("0155244111", "0155-24-4111"),
        ("0980829911", "0980-82-9911"),
        ("0499221441", "04992-2-1441"),
        # free dial, navi dial
        ("0120444444", "0120-444-444"),
        ("0120-444-444", "0120-444-444"),
        ("08001234567", "0800-123-4567"),
        ("0570000123", "0570-000-123"),
        # however it was typed
        ("+81 90 1234 5678", "090-1234-5678"),
        ("+81-3-1234-5678", "03-1234-5678"),
        ("819012345678", "090-1234-5678"),
        ("０３－１２３４－５６７８", "03-1234-5678"),
        ("(090)1234-5678", "090-1234-5678"),
    ],
)
def test_a_japanese_number_is_shown_in_its_usual_grouping(stored, shown):
    assert phone_display(stored) == shown


@pytest.mark.parametrize(
    "stored",
    ["03-1234-567", "031234567890", "+1 415 555 0100", "内線 203", "0501234567", "", "1234"],
)
def test_a_number_of_unknown_shape_is_shown_as_stored(stored):
    assert phone_display(stored) == stored


def test_no_number_is_shown_as_nothing():
    assert phone_display(None) == ""
