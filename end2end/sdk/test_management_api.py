"""The management API (`/api/v1`) under property-based testing: schemathesis generates requests
from the OpenAPI document the server serves (valid ones and invalid ones) and checks every
answer: never a 5xx, a documented status code and content type, and a body that matches the
documented schema.

It runs on a gateway of its own: the generated calls archive endpoints and revoke keys.
"""

import json
import pathlib
import subprocess
import sys
import urllib.request

import pytest

from conftest import Gateway


@pytest.fixture(scope="module")
def api_gw():
    g = Gateway()
    yield g
    g.stop()


def test_the_api_keeps_its_openapi_contract(api_gw):
    token = json.loads(api_gw.cli("token", "create", "--as", "ada@example.com", "--name", "schemathesis",
                                  "--write", "--json"))["token"]
    # Something to find: a personal endpoint to duplicate and a key to read, change and revoke.
    api_gw.cli("endpoint", "create", "--as", "ada@example.com", "--name", "personal")
    api_gw.cli("key", "create", "--as", "ada@example.com", "--name", "k")
    cli = pathlib.Path(sys.executable).parent / "schemathesis"
    base = f"http://127.0.0.1:{api_gw.port}"
    r = subprocess.run(
        [str(cli), "run", f"{base}/api/v1/openapi.json", "--url", base,
         "--header", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--max-examples", "30", "--seed", "7", "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=900, check=False,
    )
    report = r.stdout + r.stderr
    assert r.returncode == 0, report[-6000:]
    # It really ran: every operation of the document was selected.
    with urllib.request.urlopen(f"{base}/api/v1/openapi.json") as res:
        doc = json.load(res)
    n = sum(len([m for m in item if m in ("get", "post", "patch", "put", "delete")])
            for item in doc["paths"].values())
    assert n >= 20, n
    assert f"{n} selected / {n} total" in report, report[-3000:]
    # And the server stayed healthy throughout (no crash, nothing lost).
    logs = api_gw.log_path.read_text()
    assert "panicked" not in logs
