from django.urls import path

from tickets import views

urlpatterns = [
    path("csat/<str:token>/", views.csat_page, name="tickets-csat"),
]
