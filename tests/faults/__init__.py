"""Fault injection with real sockets: misbehaving servers and a proxy in front of tests/idp (see README,
"Reliability and security")."""
