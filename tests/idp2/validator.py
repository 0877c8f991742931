"""The test IdP's oauthlib request validator: django-oauth-toolkit's, with two additions.

* One client, several grants. A django-oauth-toolkit Application has exactly one
  ``authorization_grant_type``, but FlyteAdmin hands a notebook one client id for both the browser
  (authorization code + PKCE) and the device flow, as tests/idp's ``jupyter-native`` allows. The
  seeded clients' other grants are listed in ``EXTRA_GRANTS`` (tests/idp2/seed.py) and allowed here.
* The rig's counters (tests/idp2/rig.py): a replayed rotated refresh token that makes
  django-oauth-toolkit revoke the whole token family (REFRESH_TOKEN_REUSE_PROTECTION) counts as one
  revoked grant, as node-oidc-provider's ``grant.revoked`` event does.

Claims: ``sub`` stays django-oauth-toolkit's (the user's primary key, as a real deployment's);
``preferred_username``, ``name`` and ``email`` come with the ``profile`` and ``email`` scopes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import F
from oauth2_provider.models import AbstractApplication, get_refresh_token_model
from oauth2_provider.oauth2_validators import GRANT_TYPE_MAPPING, OAuth2Validator

from .rig import STATS
from .seed import EXTRA_GRANTS


def _extra(client: Any) -> frozenset[str]:
    return EXTRA_GRANTS.get(getattr(client, "client_id", ""), frozenset())


class RigValidator(OAuth2Validator):
    def validate_grant_type(self, client_id: str, grant_type: str, client: Any, request: Any,
                            *args: Any, **kwargs: Any) -> bool:
        if super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs):
            return True
        if grant_type == "password":
            return False
        return bool(_extra(request.client) & set(GRANT_TYPE_MAPPING.get(grant_type, ())))

    def validate_response_type(self, client_id: str, response_type: str, client: Any, request: Any,
                               *args: Any, **kwargs: Any) -> bool:
        if super().validate_response_type(client_id, response_type, client, request, *args, **kwargs):
            return True
        return response_type == "code" and AbstractApplication.GRANT_AUTHORIZATION_CODE in _extra(client)

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        family = self._live_family(refresh_token)
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid and family is not None and family[1] > 0 and self._live_count(family[0]) == 0:
            STATS.count_revoked()  # a replay revoked a family that was alive a moment ago
        return valid

    @staticmethod
    def _live_family(token: str) -> tuple[Any, int] | None:
        """(family, live tokens in it) of a revoked refresh token, else None."""
        model = get_refresh_token_model()
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        rt = model.objects.filter(token_checksum=checksum).order_by(F("revoked").desc(nulls_first=True)).first()
        if rt is None or rt.revoked is None or not rt.token_family:
            return None
        return rt.token_family, RigValidator._live_count(rt.token_family)

    @staticmethod
    def _live_count(family: Any) -> int:
        return get_refresh_token_model().objects.filter(token_family=family, revoked__isnull=True).count()

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        return {
            "preferred_username": user.get_username(),
            "name": user.get_full_name() or user.get_username(),
            "email": user.email,
            "email_verified": bool(user.email),
        }
