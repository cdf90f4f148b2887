from hypothesis import given
from hypothesis import strategies as st

from crm.normalize import email_normalize, kana_normalize, phone_normalize, postal_code_normalize


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
