"""/api/v1/: every app's API routes, one router."""

from core.api.routers import ApiRouter
from crm import api as crm_api
from tickets import api as tickets_api

router = ApiRouter(trailing_slash=True)
router.include_root_view = False
crm_api.register(router)
tickets_api.register(router)

urlpatterns = router.urls
