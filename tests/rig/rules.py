"""The rules of the README's "Rules the suite checks" section, one sentence each (tests/rig/reliability.py).

A test that checks a case of a rule records it with the ``reliability_rule`` fixture:
``reliability_rule(rules.HOSTILE_CONFIG, "a directory as config.yaml", "ConfigurationError naming the file")``.
The sentence is the section's heading, so it lives here once; a new rule is a new name here.
"""

ORIGINS = "Tokens go only to their own origin: one normal form (IDNA, lower case, explicit port) for requests and gRPC."
HOSTILE_CONFIG = (
    "Hostile configuration files: one sentence naming the file, no traceback, no hang; an explicit --endpoint "
    "never depends on a config file."
)
SCANNER_FORMS = "The notebook scanner finds every form of a secret a saved notebook can hold."
EXPIRY = "One expiry parser: JWT exp in seconds, milliseconds or a numeric string, read alike everywhere."
RELAY_LOGS = "The redirect relay logs no code or state, on success and on failure."
KEYRING_RACE = (
    "A keyring read never heals with a half-written pair: a read writes nothing, except under the cross-process "
    "lock after reading again."
)
ONE_GRANT = "Tokens of the two SDK layouts are combined only when they belong to one grant."
FORK = "A fork during a flight: the child's waits end at once with a typed error, and its next call starts afresh."
HUB_BACKOFF = "Renewal through JupyterHub is single flight with backoff, like a refresh grant."
