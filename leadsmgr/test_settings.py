"""Settings for the test suite: the normal settings with DEBUG on.

DEBUG gives a development SECRET_KEY and keeps HTTPS redirects off, since the test client speaks
plain HTTP; production hardening is checked separately with `manage.py check --deploy`.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")

from leadsmgr.settings import *  # noqa: F403

# Hashing test users' passwords with PBKDF2 would dominate the suite's run time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
