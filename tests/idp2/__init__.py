"""The second test identity provider: django-oauth-toolkit (Django, oauthlib), one process, SQLite.

Started by tests/rig/idp2.py as ``python -m tests.idp2.serve``; docs/test-rig.md describes its users,
clients and knobs. It is configured as a production deployment would run it (OpenID Connect on, PKCE
required with S256 only, refresh-token rotation with reuse detection, RFC 9207 ``iss`` on redirects,
RFC 7009 revocation, client secrets and tokens hashed at rest); what it adds is test-only and lives
under ``/rig/`` (tests/idp2/rig.py).
"""
