"""The project's URLs plus one API view that fails, to see what a server
error under /api/ answers (tests/core/test_api_errors.py)."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config import urls


@api_view(["GET"])
@permission_classes([AllowAny])
def fails(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/fails/", fails), *urls.urlpatterns]
handler404 = urls.handler404
handler500 = urls.handler500
