"""URLs of the second test IdP: django-oauth-toolkit at the root (the issuer has no path), the sign-in
page, and the rig's test-only endpoints under /rig/ (tests/idp2/rig.py)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

from . import rig

urlpatterns = [
    path("", include("oauth2_provider.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/signed-in/", TemplateView.as_view(template_name="registration/signed_in.html")),
    path("rig/grants", rig.grants),
    path("rig/device-codes", rig.device_codes),
    path("rig/introspect", rig.introspect),
    path("rig/users", rig.users),
]
