from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api.errors import api_not_found

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("", include("outreach.urls")),
    path("", include("tickets.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other address under /api/ is a 404 in the API's error shape,
    # with DEBUG on too (where Django would show its HTML page).
    re_path(r"^api/", api_not_found),
]

handler404 = "core.api.errors.page_not_found"
handler500 = "core.api.errors.server_error"
