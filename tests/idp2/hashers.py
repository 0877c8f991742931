"""A PBKDF2 password hasher with few iterations: the real hashing path (user passwords and client
secrets are hashed at rest, as in production) without Django's 1,000,000 iterations per check, which
would cost the test suite seconds on every client-credentials request and every sign-in."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    algorithm = "pbkdf2_sha256_rig"
    iterations = 1000
