"""Unit tests for flyteauth_jupyter.scan: notebooks built with nbformat.v4 in tmp_path."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from flyteauth_jupyter.scan import Finding, NotANotebookError, fingerprint, main, scan_notebook
from rig import rules

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(sub: str = "alice") -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64url(json.dumps({"sub": sub, "exp": 1999999999, "iss": "http://127.0.0.1:4000"}).encode())
    return f"{header}.{payload}.Qm9ndXNTaWduYXR1cmVfX19fQWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo"


JWT = make_jwt()
OPAQUE = "p7Vq2LxZ9mKd0RtWb4NcYs8HuFe3Jg6A"  # an opaque (non-JWT) access token
REFRESH = "rT_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CODE = "SplxlOBeZQQYbYS6WxSbIA2kQp"
DEVICE_CODE = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CLIENT_SECRET = "cs-7Hq2vN8pL4xR1tZ6"
PLAIN = "s3cr3t-Value-42!"
ALL_SECRETS = [JWT, OPAQUE, REFRESH, CODE, DEVICE_CODE, VERIFIER, CLIENT_SECRET, PLAIN]


def code_cell(*outputs, **kw):
    cell = v4.new_code_cell("print('hello')", outputs=list(outputs), execution_count=1)
    cell.update(kw)
    return cell


def stream(text: str, name: str = "stdout"):
    return v4.new_output("stream", name=name, text=text)


def write(tmp_path: Path, nb, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def notebook(*cells, metadata=None):
    nb = v4.new_notebook(cells=list(cells))
    if metadata:
        nb.metadata.update(metadata)
    return nb


def widget_metadata(states: dict) -> dict:
    return {
        "widgets": {
            WIDGET_STATE: {
                "version_major": 2,
                "version_minor": 0,
                "state": {
                    mid: {"model_name": "TextModel", "model_module": "@jupyter-widgets/controls",
                          "model_module_version": "2.0.0", "state": st}
                    for mid, st in states.items()
                },
            }
        }
    }


def kinds(findings):
    return {f.kind for f in findings}


# ------------------------------------------------------------------ (a)-(g): planted secrets


def test_a_jwt_in_stream_output(tmp_path):
    nb = notebook(code_cell(stream(f"logged in, token={JWT}\n")))
    findings = scan_notebook(write(tmp_path, nb))
    assert len(findings) == 1
    f = findings[0]
    assert f.kind == "JWT"
    assert f.where.startswith("cells[0] (id ")
    assert "outputs[0], stream stdout" in f.where
    assert f.fingerprint == f"{JWT[:4]}...({len(JWT)} chars)"


def test_b_access_token_in_execute_result_html(tmp_path):
    body = json.dumps({"access_token": OPAQUE, "token_type": "Bearer", "expires_in": 3600})
    out = v4.new_output("execute_result", data={"text/html": f"<pre>{body.replace(chr(34), '&quot;')}</pre>",
                                                "text/plain": "<IPython.core.display.HTML object>"},
                        execution_count=1)
    findings = scan_notebook(write(tmp_path, notebook(code_cell(out))))
    assert [(f.kind, f.where.split(", ", 1)[1]) for f in findings] == [("access_token value", "outputs[0], text/html")]


def test_c_refresh_token_in_error_traceback(tmp_path):
    err = v4.new_output(
        "error", ename="InvalidGrantError", evalue="token request failed",
        traceback=["\x1b[0;31m---------------------------------------------------------\x1b[0m",
                   "\x1b[0;31mInvalidGrantError\x1b[0m: sent grant_type=refresh_token"
                   f"&refresh_token={REFRESH}&client_id=flytectl"],
    )
    findings = scan_notebook(write(tmp_path, notebook(code_cell(err))))
    assert [(f.kind, f.where.endswith("outputs[0], error traceback")) for f in findings] == [
        ("refresh_token value", True)]


def test_c2_jwt_in_exception_value(tmp_path):
    err = v4.new_output("error", ename="ValueError", evalue=f"bad token {JWT}", traceback=[])
    assert kinds(scan_notebook(write(tmp_path, notebook(code_cell(err))))) == {"JWT"}


def test_d_widget_state_recursive(tmp_path):
    mid_text, mid_box = str(uuid.uuid4()), uuid.uuid4().hex
    meta = widget_metadata({
        mid_text: {"value": JWT, "description": "token"},
        mid_box: {"layout": "IPY_MODEL_" + mid_text,
                  "_dom_classes": [], "nested": {"deeper": [{"x": f"Authorization: Bearer {OPAQUE}"}]}},
    })
    nb = notebook(code_cell(), metadata=meta)
    findings = scan_notebook(write(tmp_path, nb))
    assert {(f.where, f.kind) for f in findings} == {
        (f"widget state {mid_text}", "JWT"),
        (f"widget state {mid_box}", "bearer token"),
    }


def test_d2_client_secret_in_notebook_metadata_and_verifier_in_cell_metadata(tmp_path):
    cell = code_cell()
    cell.metadata["flyte"] = {"code_verifier": VERIFIER}
    nb = notebook(cell, metadata={"flyte": {"client_id": "flytepropeller", "client_secret": CLIENT_SECRET}})
    findings = scan_notebook(write(tmp_path, nb))
    assert {(f.where.split(" (id")[0] if f.where.startswith("cells") else f.where, f.kind) for f in findings} == {
        ("notebook metadata", "client_secret value"),
        ("cells[0]", "code_verifier value"),
    }
    assert any(f.where.endswith("cell metadata") for f in findings)


def test_e_attachment_decoded_text(tmp_path):
    payload = json.dumps({"device_code": DEVICE_CODE, "user_code": "ABCD-EFGH"}).encode()
    md = v4.new_markdown_cell("![x](attachment:resp.json)",
                              attachments={"resp.json": {"application/json": base64.b64encode(payload).decode()}})
    findings = scan_notebook(write(tmp_path, notebook(md)))
    assert len(findings) == 1
    assert findings[0].kind == "device_code value"
    assert 'attachment resp.json, application/json' in findings[0].where


def test_e2_attachment_raw_base64_string(tmp_path):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 20).decode()
    md = v4.new_markdown_cell("pic", attachments={"a.png": {"image/png": png}, "t.txt": {"text/plain": JWT}})
    findings = scan_notebook(write(tmp_path, notebook(md)))
    assert [(f.kind, f.where.endswith("attachment t.txt, text/plain")) for f in findings] == [("JWT", True)]


def test_f_exact_value_plain_text_api_and_cli(tmp_path, capsys, monkeypatch):
    out = v4.new_output("display_data", data={"text/plain": f"configured with {PLAIN} ok"})
    path = write(tmp_path, notebook(code_cell(out)))
    assert scan_notebook(path) == []  # no heuristic fires on a plain string
    findings = scan_notebook(path, values=[PLAIN])
    assert [f.kind for f in findings] == ["known secret (value #1)"]
    assert main(["--value", PLAIN, str(path)]) == 1
    monkeypatch.setenv("FLYTE_TEST_SECRET", PLAIN)
    assert main(["--values-from-env", "FLYTE_TEST_SECRET", str(path)]) == 1
    captured = capsys.readouterr()
    assert "known secret (--value #1)" in captured.out
    assert "known secret ($FLYTE_TEST_SECRET)" in captured.out
    assert PLAIN not in captured.out + captured.err


def test_g_bearer_header(tmp_path):
    text = f"> GET /api/v1/projects\n> authorization: Bearer {OPAQUE}\n> accept: application/json\n"
    findings = scan_notebook(write(tmp_path, notebook(code_cell(stream(text, "stderr")))))
    assert [(f.kind, f.where.endswith("stream stderr")) for f in findings] == [("bearer token", True)]


def test_authorization_code_in_redirect_url(tmp_path):
    outs = [
        stream(f"redirected to http://127.0.0.1:53593/callback?code={CODE}\n"),
        v4.new_output("display_data", data={
            "text/html": f'<a href="https://app.example.com/done?code={CODE}2&amp;state=af0ifjsldkj">x</a>'}),
    ]
    findings = scan_notebook(write(tmp_path, notebook(code_cell(*outs))))
    assert [f.kind for f in findings] == ["authorization code in redirect URL"] * 2


def test_device_code_in_json_mimetype_and_in_memory_api():
    out = v4.new_output("execute_result", data={"application/json": {"device_code": DEVICE_CODE,
                                                                      "user_code": "WDJB-MJHT"}},
                        execution_count=1)
    findings = scan_notebook(notebook(code_cell(out)))
    assert [(f.path, f.kind) for f in findings] == [("<notebook>", "device_code value")]


# ------------------------------------------------------------------ no false positives


def clean_notebook():
    mid1, mid2 = str(uuid.uuid4()), uuid.uuid4().hex
    verification = "https://idp.example.com/device"
    auth_url = ("http://127.0.0.1:4000/auth?response_type=code&client_id=flytectl"
                "&redirect_uri=http%3A%2F%2Flocalhost%3A53593%2Fcallback&scope=openid+offline_access"
                "&state=Zx8Kq2Lw9Tn4Rv7Yb1Mc&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                "&code_challenge_method=S256")
    png = base64.b64encode(bytes(range(256)) * 8).decode()
    cells = [
        code_cell(
            stream(f"To sign in, open {verification} and enter the code ABCD-EFGH\n"),
            stream(f"Or open {verification}?user_code=ABCD-EFGH\n"),
            v4.new_output("display_data", data={
                "application/vnd.jupyter.widget-view+json": {"model_id": mid1, "version_major": 2,
                                                             "version_minor": 0},
                "text/plain": "LoginWidget(...)",
            }),
        ),
        code_cell(
            v4.new_output("display_data", data={"text/html": f'<a href="{auth_url}">Sign in</a> code <b>ABCD-EFGH</b>'}),
            v4.new_output("execute_result", data={
                "text/plain": "Credentials(access_token='eyJh...(812 chars)', refresh_token=<redacted>, "
                              "for_endpoint='flyte.example.com', expires_in=3600)",
                "application/json": {"token_type": "Bearer", "expires_in": 3600, "access_token": "<redacted>",
                                     "scope": "openid offline_access", "user_code": "ABCD-EFGH",
                                     "example": {"refresh_token": "YOUR_REFRESH_TOKEN", "id_token": "null"}},
            }, execution_count=2),
            v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure size 640x480>"}),
        ),
        code_cell(
            stream("Send the header as `Authorization: Bearer <access token>`.\n"
                   "https://flyte.example.com/console/projects?domain=development&code=editor\n"
                   "Credentials(access_token=<redacted 812 chars>, refresh_token=None, id_token=None)\n"
                   "fetch_grpc_call_auth_metadata() -> ('authorization', 'Bearer eyJh...(812 chars)')\n"),
            v4.new_output("error", ename="InvalidGrantError", evalue="the refresh token was revoked (HTTP 400)",
                          traceback=["----> 3 client = Client(access_token=creds.access_token,",
                                     "      4                 refresh_token=creds.refresh_token)",
                                     "InvalidGrantError: the refresh token was revoked (HTTP 400)"]),
        ),
        v4.new_markdown_cell("Tokens look like `eyJ...`; set `client_secret=${FLYTE_SECRET}`."),
    ]
    cells[0].metadata["tags"] = ["login"]
    meta = widget_metadata({
        mid1: {"value": "Waiting for you to enter ABCD-EFGH at https://idp.example.com/device",
               "children": ["IPY_MODEL_" + mid2], "layout": "IPY_MODEL_" + mid2},
        mid2: {"description": "Sign in", "_view_name": "ButtonView", "tooltip": ""},
    })
    meta["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook(*cells, metadata=meta)


def test_clean_notebook_passes(tmp_path, capsys):
    path = write(tmp_path, clean_notebook())
    assert scan_notebook(path) == []
    assert main([str(path)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["-v", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no secrets found in 1 notebook" in out


# ------------------------------------------------------------------ issue 16: the four forms it missed


@pytest.mark.parametrize("argument", [
    f"http://127.0.0.1:53593/callback?code={CODE}&state=Zx8Kq2Lw9Tn4",  # the whole address (what the panel asks for)
    f"127.0.0.1:53593/callback?code={CODE}&state=Zx8Kq2Lw9Tn4",  # as some address bars show it
    f"?code={CODE}&state=Zx8Kq2Lw9Tn4",  # the query alone
    f"state=Zx8Kq2Lw9Tn4&code={CODE}",
])
def test_the_code_in_a_submit_redirect_cell(tmp_path, argument, reliability_rule):
    cell = v4.new_code_cell(f'flyte_auth.submit_redirect("{argument}")', execution_count=3)
    findings = scan_notebook(write(tmp_path, notebook(cell)))
    assert [(f.kind, f.fingerprint) for f in findings] == [("authorization code in redirect URL", fingerprint(CODE))]
    assert findings[0].where.endswith("source")
    reliability_rule(rules.SCANNER_FORMS, "the authorization code in a flyte_auth.submit_redirect(\"...\") cell",
                     "found (cell source; address, host:port/path, or query alone)")


def test_sources_of_every_cell_type_are_scanned(tmp_path, reliability_rule):
    cells = [
        v4.new_markdown_cell(f"Call the API with `Authorization: Bearer {JWT}`."),
        v4.new_code_cell(f"token = '{OPAQUE}'\nheaders = {{'Authorization': f'Bearer {OPAQUE}'}}", execution_count=None),
        v4.new_raw_cell(f"refresh_token: {REFRESH}"),
    ]
    findings = scan_notebook(write(tmp_path, notebook(*cells)))
    assert {(f.where.rsplit(", ", 1)[-1], f.fingerprint) for f in findings} == {
        ("markdown source", fingerprint(JWT)),  # a bearer token, which is a JWT
        ("code source", fingerprint(OPAQUE)),
        ("raw source", fingerprint(REFRESH)),
    }
    reliability_rule(rules.SCANNER_FORMS, "a bearer JWT in a markdown cell (and code and raw cell sources)", "found")


@pytest.mark.parametrize("fold", ["terminal", "indented", "python concatenation", "backslash"])
def test_a_jwt_folded_across_lines(tmp_path, fold, reliability_rule):
    pieces = [JWT[i:i + 40] for i in range(0, len(JWT), 40)]
    text = {
        "terminal": "\n".join(pieces),
        "indented": "token:\n    " + "\n    ".join(pieces),
        "python concatenation": "token = (\n" + "\n".join(f'    "{p}"' for p in pieces) + "\n)",
        "backslash": "export TOKEN=" + "\\\n".join(pieces),
    }[fold]
    cell = code_cell(stream(text + "\n")) if fold != "python concatenation" else v4.new_code_cell(text)
    findings = scan_notebook(write(tmp_path, notebook(cell)))
    assert (("JWT", fingerprint(JWT)) in {(f.kind, f.fingerprint) for f in findings}), findings
    reliability_rule(rules.SCANNER_FORMS, "a JWT folded across lines (terminal wrap, indentation, string concatenation, backslash)",
                     "found, unfolded")


@pytest.mark.parametrize("uri", [
    "data:text/plain;base64," + base64.b64encode(f"access_token={OPAQUE}".encode()).decode(),
    "data:application/json;charset=utf-8;base64," + base64.b64encode(json.dumps({"refresh_token": REFRESH}).encode()).decode(),
    "data:text/plain," + __import__("urllib.parse").parse.quote(f"Authorization: Bearer {OPAQUE}"),
    "data:text/plain;base64," + base64.b64encode(JWT.encode()).decode(),
])
def test_a_token_inside_a_data_uri_in_html_output(tmp_path, uri, reliability_rule):
    html_out = v4.new_output("display_data", data={"text/html": f'<a download="token.txt" href="{uri}">Download</a>'})
    findings = scan_notebook(write(tmp_path, notebook(code_cell(html_out))))
    assert findings and all(f.where.endswith("text/html") for f in findings)
    assert {f.fingerprint for f in findings} & {fingerprint(OPAQUE), fingerprint(REFRESH), fingerprint(JWT)}
    reliability_rule(rules.SCANNER_FORMS, "a token inside a data: URI in HTML output (base64 or %-encoded)", "found, decoded")


def test_images_in_data_uris_and_ordinary_code_stay_clean(tmp_path):
    png = base64.b64encode(bytes(range(256)) * 16).decode()
    cells = [
        code_cell(v4.new_output("display_data", data={"text/html": f'<img src="data:image/png;base64,{png}">'})),
        v4.new_code_cell("creds = flyte_auth.wait(timeout=300)\n"
                         "print(len(creds.access_token))\n"
                         "client = Client(access_token=creds.access_token, refresh_token=creds.refresh_token)\n"
                         "exit_code = run(code=compile(src, 'x', 'exec'), state=state)\n"
                         "flyte_auth.submit_redirect(pasted_address)\n"
                         "flyte_auth.submit_redirect(\"<paste the address here>\")\n"),
        v4.new_markdown_cell("Paste it: `flyte_auth.submit_redirect(\"http://127.0.0.1:53593/callback?code=...&state=...\")`\n"
                             "The header is `Authorization: Bearer <access token>`; a JWT looks like `eyJhbGciOi...`.\n"
                             "A long line that wraps\nacross two lines of prose without any token in it at all."),
    ]
    assert scan_notebook(write(tmp_path, notebook(*cells))) == []


def test_the_example_notebooks_scan_clean(reliability_rule):
    paths = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
    assert len(paths) >= 5
    for path in paths:
        assert scan_notebook(path) == [], path.name
    assert main([str(p) for p in paths]) == 0
    reliability_rule(rules.SCANNER_FORMS, f"false positives: the {len(paths)} example notebooks, sources included",
                     "0 findings")


# ------------------------------------------------------------------ CLI contract


def dirty_notebook():
    meta = widget_metadata({str(uuid.uuid4()): {"value": JWT}})
    meta["flyte"] = {"client_secret": CLIENT_SECRET}
    cell = code_cell(
        stream(f"Authorization: Bearer {OPAQUE}\n"),
        stream(f"http://localhost:53593/callback?code={CODE}&state=abc\n"),
        v4.new_output("execute_result", data={"text/plain": repr({"refresh_token": REFRESH,
                                                                  "device_code": DEVICE_CODE})},
                      execution_count=1),
        v4.new_output("error", ename="E", evalue=f"code_verifier={VERIFIER}", traceback=[PLAIN]),
    )
    cell.metadata["saved"] = {"id_token": JWT}
    return notebook(cell, metadata=meta)


def test_report_never_contains_a_secret(tmp_path, capsys):
    path = write(tmp_path, dirty_notebook())
    assert main(["--value", PLAIN, str(path)]) == 1
    captured = capsys.readouterr()
    report = captured.out + captured.err
    for secret in ALL_SECRETS:
        assert secret not in report
    assert {"JWT", "bearer token", "authorization code in redirect URL", "refresh_token value",
            "device_code value", "code_verifier value", "client_secret value", "id_token value",
            "known secret (--value #1)"} <= {line.rsplit(": ", 1)[-1].split(" [")[0]
                                             for line in captured.out.splitlines()}
    assert "possible secret(s) in 1 of 1 notebook(s)" in captured.out.splitlines()[-1]
    for f in scan_notebook(path, [PLAIN]):
        assert all(s not in str(dataclasses.astuple(f)) for s in ALL_SECRETS)


def test_exit_codes_0_1_2(tmp_path, capsys):
    clean = write(tmp_path, clean_notebook(), "clean.ipynb")
    dirty = write(tmp_path, dirty_notebook(), "dirty.ipynb")
    text = tmp_path / "notes.ipynb"
    text.write_text(f"just some text {PLAIN}\n")
    not_nb = tmp_path / "data.ipynb"
    not_nb.write_text(json.dumps({"access": PLAIN}))
    assert main([str(clean)]) == 0
    assert main([str(dirty)]) == 1
    assert main([str(clean), str(dirty)]) == 1
    capsys.readouterr()
    for bad in (text, not_nb, tmp_path / "missing.ipynb", tmp_path):
        assert main([str(clean), str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(str(bad)) and err.rstrip().endswith(".")
        assert PLAIN not in err
    assert main([]) == 2  # usage
    assert main(["--values-from-env", "FLYTEAUTH_SCAN_UNSET_VAR", str(clean)]) == 2
    capsys.readouterr()


def test_schema_invalid_notebook_is_exit_2_but_still_scanned(tmp_path, capsys):
    nb = json.loads(nbformat.writes(notebook(code_cell(stream(f"Bearer {OPAQUE}\n")))))
    nb["cells"][0]["outputs"].append({"output_type": "bogus"})
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(NotANotebookError):
        scan_notebook(path)
    assert kinds(scan_notebook(path, strict=False)) == {"bearer token"}
    assert main([str(path)]) == 2
    captured = capsys.readouterr()
    assert "fails nbformat schema validation in cells[0]" in captured.err
    assert "bearer token" in captured.out and OPAQUE not in captured.out


def test_python_dash_m_entry_point(tmp_path):
    path = write(tmp_path, dirty_notebook())
    proc = subprocess.run([sys.executable, "-m", "flyteauth_jupyter.scan", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "JWT" in proc.stdout and JWT not in proc.stdout + proc.stderr


# ------------------------------------------------------------------ small pieces


def test_finding_is_frozen_and_fingerprint_hides_short_values():
    f = Finding("a.ipynb", "notebook metadata", "JWT", "eyJh...(10 chars)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.kind = "x"  # type: ignore[misc]
    assert fingerprint("abcdefgh") == "ab...(8 chars)"
    assert fingerprint("abc") == "...(3 chars)"
    assert fingerprint(JWT).startswith("eyJh...(")


def test_secret_looking_names_are_not_echoed(tmp_path):
    meta = widget_metadata({JWT: {"value": f"Bearer {OPAQUE}"}})
    findings = scan_notebook(write(tmp_path, notebook(code_cell(), metadata=meta)))
    assert findings and all(JWT not in f.where for f in findings)
    assert any(f.where == "widget state <redacted name>" for f in findings)


# ------------------------------------------------------------------ issue 10: what the scanner missed
def _kinds(findings):
    return {(f.kind, f.fingerprint) for f in findings}


def test_prefixed_client_secret_in_dict_and_env_reprs(tmp_path):
    nb = notebook(
        code_cell(v4.new_output("execute_result", data={
            "text/plain": f"{{'HOME': '/home/jovyan', 'FLYTE_CREDENTIALS_CLIENT_SECRET': '{CLIENT_SECRET}'}}"},
            execution_count=1)),
        code_cell(stream(f"env: FLYTE_CREDENTIALS_CLIENT_SECRET={CLIENT_SECRET}2\n")),  # %env VAR=value
        code_cell(stream(f'{{"my_client_secret": "{CLIENT_SECRET}3"}}\n')),
    )
    findings = scan_notebook(write(tmp_path, nb))
    assert {f.where.split(",")[0] for f in findings} == {"cells[0] (id " + nb.cells[0].id + ")",
                                                         "cells[1] (id " + nb.cells[1].id + ")",
                                                         "cells[2] (id " + nb.cells[2].id + ")"}
    assert all(f.kind == "client_secret value" for f in findings)


def test_yaml_and_log_style_access_token(tmp_path):
    nb = notebook(
        code_cell(stream(f"credentials:\n  access_token: {OPAQUE}\n  refresh_token: {REFRESH}\n")),
        code_cell(stream(f"2026-12-01 21:00:00 DEBUG got access_token: {OPAQUE}9 for alice\n")),
    )
    kinds = [f.kind for f in scan_notebook(write(tmp_path, nb))]
    assert kinds.count("access_token value") == 2 and "refresh_token value" in kinds


def test_yaml_style_type_hints_are_not_secrets(tmp_path):
    nb = notebook(code_cell(stream("access_token: str | None\nrefresh_token: Optional[str]\n"
                                   "id_token: None\nclient_secret: ********\n")))
    assert scan_notebook(write(tmp_path, nb)) == []


def test_base64_json_inside_widget_state(tmp_path):
    blob = base64.b64encode(json.dumps({"access_token": OPAQUE, "token_type": "Bearer"}).encode()).decode()
    nb = notebook(code_cell(), metadata=widget_metadata({"m1": {"value": blob, "description": "x"}}))
    findings = scan_notebook(write(tmp_path, nb))
    assert [(f.where, f.kind) for f in findings] == [("widget state m1", "access_token value")]


def test_code_in_a_url_without_state(tmp_path):
    nb = notebook(code_cell(stream(f"the browser ended on https://flyte.example.com/oauth2/done?code={CODE}\n")))
    assert [f.kind for f in scan_notebook(write(tmp_path, nb))] == ["authorization code in redirect URL"]


@pytest.mark.parametrize("depth", [900, 100_000])
def test_a_deeply_nested_notebook_cannot_be_read_exit_2(tmp_path, capsys, depth):
    nested = "[" * depth + "]" * depth
    text = ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {"deep": ' + nested + '}, "cells": []}')
    path = tmp_path / "deep.ipynb"
    path.write_text(text)
    assert main([str(path)]) == 2  # cannot read, not "secrets found"
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err and "Error" not in err


def test_a_deeply_nested_document_in_memory_is_not_a_crash():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(NotANotebookError, match="nested too deeply"):
        scan_notebook({"nbformat": 4, "metadata": {"deep": deep}, "cells": []})
