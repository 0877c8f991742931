"""A front end without a widget manager: nbclient (what papermill and CI run), against the real IdP.

nbclient draws no widgets; it keeps the HTML half of the panel's output and applies
``update_display_data`` to it in place. The test records every version of that output as nbclient
receives it: one output (never a second copy) that showed the verification link and the user code
while the login waited, and that ends, in the saved file, as "Signed in as alice" with no code left.
A person (rig.user.DeviceApprover) approves the code the IdP issued.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from rig.user import DeviceApprover

pytestmark = pytest.mark.idp

nbclient = pytest.importorskip("nbclient")


class RecordingClient(nbclient.NotebookClient):
    """nbclient, keeping a copy of the first cell's HTML after every message it processes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.versions: list[str] = []

    def process_message(self, msg, cell, cell_index):
        result = super().process_message(msg, cell, cell_index)
        first = self.nb.cells[0]
        html = [o.get("data", {}).get("text/html", "") for o in first.get("outputs", []) if o.get("output_type") == "display_data"]
        if html and (not self.versions or self.versions[-1] != html[0]):
            self.versions.append(html[0])
        return result


def test_nbclient_shows_the_html_fallback_updated_in_place(flyteadmin, idp, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"%load_ext flyteauth_jupyter\n%flyte_login --endpoint {flyteadmin.endpoint} --flow device --no-cache --wait --timeout 60"),
        nbformat.v4.new_code_cell("print(flyte_auth.status)"),
    ]
    client = RecordingClient(nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with DeviceApprover(idp.issuer):
        client.execute()

    waiting = [v for v in client.versions if "flyteauth-code" in v]
    assert waiting, client.versions
    code = re.search(r'class="flyteauth-code"[^>]*>([^<]+)<', waiting[0]).group(1)
    assert re.search(r'<a class="flyteauth-link" href="http://127\.0\.0\.1:\d+/[^"]*"', waiting[0])
    assert "Signed in as alice" in client.versions[-1]

    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)
    displays = [o for o in saved.cells[0].outputs if o.output_type == "display_data"]
    assert len(displays) == 1  # updated in place, not appended
    final = displays[0].data["text/html"]
    assert "Signed in as alice" in final and code not in final and "flyteauth-link" not in final
    assert saved.cells[1].outputs[0]["text"].strip() == "signed_in"
