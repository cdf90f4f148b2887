from django.urls import path

from outreach import views, webhooks

app_name = "outreach"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("r/<str:token>/", views.click, name="click"),
    path("hooks/line/", webhooks.line_webhook, name="line-webhook"),
]
