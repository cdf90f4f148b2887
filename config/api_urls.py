"""/api/v1/: every app's API routes, one router."""

from rest_framework.routers import DefaultRouter

from crm import api as crm_api
from tickets import api as tickets_api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
crm_api.register(router)
tickets_api.register(router)

urlpatterns = router.urls
