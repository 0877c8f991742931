"""Side-by-side benchmarks of flyteauth_jupyter against flytekit (``make bench``: ``python -m bench``).

Absolute times are noisy on shared machines; the table reports ratios (ours / flytekit) and counts
(keyring calls, HTTP/RPC requests), which are not. Benchmarks are not tests: nothing here asserts.
"""
