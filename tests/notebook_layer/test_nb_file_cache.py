"""``%config FlyteAuthMagics.token_cache = 'file'`` in a real InteractiveShell against the real IdP.

The keyring is an in-memory one that must stay empty: the tokens go to the private file cache, the
widget says where, and a second login (a new authenticator, as after a kernel restart) is served
from the file without a prompt or a token request.
"""

from __future__ import annotations

import os
import stat

import pytest
from test_nb_idp import all_widget_state, assert_no_tokens, call_api, login, outputs_text

from flyteauth_jupyter.notebook import connect
from flyteauth_jupyter.stores import TOKEN_CACHE_ENV, FileStore

pytestmark = pytest.mark.idp


def test_token_cache_trait_keeps_tokens_in_a_private_file(nb, flyteadmin, memory_keyring, monkeypatch, tmp_path):
    ip, captured = nb
    monkeypatch.delenv(TOKEN_CACHE_ENV, raising=False)
    monkeypatch.setenv("NB_TEST_CLIENT_SECRET", "confidential-secret")
    ip.run_line_magic("config", "FlyteAuthMagics.token_cache = 'file'")
    stores_built: list = []
    real_prepare = connect.prepare

    def spying_prepare(spec, observer):
        prepared = real_prepare(spec, observer)
        stores_built.append(prepared.authenticator.store)
        return prepared

    monkeypatch.setattr("flyteauth_jupyter.notebook.connect.prepare", spying_prepare)
    line = (f"--endpoint {flyteadmin.endpoint} --flow client-credentials --client-id jupyter-confidential "
            "--client-secret-env NB_TEST_CLIENT_SECRET --scopes api:read")
    first = login(ip, line)
    creds = first.wait(30)
    assert first.status == "signed_in"
    store = stores_built[0]
    assert isinstance(store, FileStore)
    assert store.directory == tmp_path / "cache" / "flyteauth_jupyter" / "tokens"
    assert stat.S_IMODE(os.stat(store.path_for(flyteadmin.service)).st_mode) == 0o600
    assert memory_keyring.entries == {}  # nothing went to the keyring
    assert first.view.notice == store.notice and str(store.directory) in first.widget.notice.value

    # a new authenticator reading the same file (as after a kernel restart): no new token request
    flyteadmin.reset_requests()
    again = login(ip, line + " --name again")
    again_creds = again.wait(30)
    assert again.status == "signed_in" and again.view.flow == "cached"
    assert again_creds.access_token == creds.access_token
    assert stores_built[1] is not store and isinstance(stores_built[1], FileStore)
    assert call_api(flyteadmin, again).status_code == 200
    text = all_widget_state() + outputs_text(captured) + repr(again) + repr(store)
    assert "confidential-secret" not in text
    assert_no_tokens(creds, text)


def test_no_cache_still_means_memory(nb, flyteadmin, monkeypatch):
    ip, _ = nb
    monkeypatch.setenv(TOKEN_CACHE_ENV, "file")
    ip.run_line_magic("config", "FlyteAuthMagics.token_cache = 'file'")
    magics = ip.magics_manager.registry["FlyteAuthMagics"]
    args = magics.flyte_login.parser.parse_args(["--endpoint", flyteadmin.endpoint, "--no-cache", "--flow", "device"])
    spec = magics.build_spec(args, name="x")
    assert spec.token_cache == "file" and spec.no_cache
    prepared = connect.prepare(spec, lambda event: None)
    assert type(prepared.authenticator.store).__name__ == "MemoryStore"
    assert prepared.notice is None
