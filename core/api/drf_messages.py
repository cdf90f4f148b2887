"""Django REST framework messages its own ja catalogue lacks (and one of
Django's whose ja says something else: "enter some characters").

Marked here so that `make messages` keeps them in ours: the project's
catalogue (LOCALE_PATHS) comes before DRF's, so an API error is Japanese
through and through. Each msgid is DRF's own, character for character.
"""

from django.utils.translation import gettext_noop

DRF_MESSAGES_WITHOUT_JA = [
    gettext_noop("Datetime value out of range."),
    gettext_noop("Ensure this field has no more than {max_length} elements."),
    gettext_noop("Ensure this field has at least {min_length} elements."),
    gettext_noop('Invalid datetime for the timezone "{timezone}".'),
    gettext_noop("Invalid input."),
    gettext_noop("Not a valid string."),
    gettext_noop("Null characters are not allowed."),
    gettext_noop("Surrogate characters are not allowed: U+{code_point:X}."),
    gettext_noop("The pagination cursor value."),
    gettext_noop("Number of results to return per page."),
    # DRF's ja says 辞書 (a Python word); the API speaks of JSON objects
    gettext_noop("Invalid data. Expected a dictionary, but got {datatype}."),
]
