"""Admin endpoints: bearer token, names and paths that cannot leave the adapters folder, run-time load/unload."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest

from .conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir) as live:
        yield live


def raw(server, method: str, raw_path: str, **kwargs) -> httpx.Response:
    """Send ``raw_path`` exactly as written (no client-side ``..`` normalisation or re-encoding)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        request = client.build_request(method, "/", **kwargs)
        request.url = request.url.copy_with(raw_path=raw_path.encode())
        return client.send(request)


def loaded(http) -> list[str]:
    return [a["name"] for a in http.get("/v1/adapters").json()["adapters"]]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(("headers", "status", "message"), [
    ({}, 401, "missing admin token"),
    ({"Authorization": "Bearer wrong"}, 403, "wrong admin token"),
    ({"Authorization": f"Basic {ADMIN_TOKEN}"}, 401, "missing admin token"),
    ({"Authorization": ADMIN_TOKEN}, 401, "missing admin token"),
])
def test_token_is_required(http, method, headers, status, message):
    reply = http.request(method, "/v1/adapters/alpha", headers=headers)
    assert reply.status_code == status
    assert message in reply.json()["detail"]
    assert loaded(http) == ["alpha", "beta"]


def test_admin_disabled_without_a_token(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir, admin_token=None) as live:
        reply = httpx.delete(live.url + "/v1/adapters/alpha", headers=AUTH)
        assert reply.status_code == 403 and "disabled" in reply.json()["detail"]


@pytest.mark.parametrize("raw_path", [
    "/v1/adapters/..",
    "/v1/adapters/%2e%2e",
    "/v1/adapters/..%2Fx",
    "/v1/adapters/..%2f..%2fetc",
    "/v1/adapters/%2Fetc%2Fpasswd",
    "/v1/adapters/%252e%252e",
    "/v1/adapters/.hidden",
    "/v1/adapters/a%00b",
    "/v1/adapters/../x",
])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_traversal_names_are_refused(server, http, raw_path, method):
    reply = raw(server, method, raw_path, headers=AUTH)
    assert 400 <= reply.status_code < 500, reply.text
    assert loaded(http) == ["alpha", "beta"]


@pytest.mark.parametrize("path", ["../alpha", "/etc", "nested/../../x", "nested\\gamma", ".", "nested/../.."])
def test_paths_outside_the_folder_are_refused(http, path):
    reply = http.post("/v1/adapters/gamma", json={"path": path}, headers=AUTH)
    assert reply.status_code == 400, reply.text
    assert "adapters folder" in reply.json()["detail"]


def test_symlink_out_of_the_folder_is_refused(http, adapters_dir, tmp_path):
    (adapters_dir / "escape").symlink_to(tmp_path, target_is_directory=True)
    try:
        reply = http.post("/v1/adapters/escape", headers=AUTH)
        assert reply.status_code == 400 and "outside the adapters folder" in reply.json()["detail"]
    finally:
        (adapters_dir / "escape").unlink()


def test_adapter_for_other_base_weights_is_refused(http):
    reply = http.post("/v1/adapters/foreign", headers=AUTH)
    assert reply.status_code == 409
    assert "was fitted on tiny (weights ffffffffffff" in reply.json()["detail"]
    assert "foreign" not in loaded(http)


def test_missing_and_malformed_adapters(http, adapters_dir):
    missing = http.post("/v1/adapters/nothing", headers=AUTH)
    assert missing.status_code == 404 and "no adapter folder 'nothing'" in missing.json()["detail"]
    broken = adapters_dir / "broken"
    shutil.copytree(adapters_dir / "nested" / "gamma", broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    try:
        for content, message in [("{not json", "manifest.json:1: not valid JSON"),
                                 (json.dumps({**manifest, "format": "other"}), "expected format 'confidently.bundle'"),
                                 (json.dumps({k: v for k, v in manifest.items() if k != "files"}),
                                  "has no 'files' list of sha256 hashes"),
                                 (json.dumps({**manifest, "files": {}}), "has no 'files' list of sha256 hashes"),
                                 (json.dumps({**manifest, "task": None}), "has no task"),
                                 (json.dumps({**manifest, "task": {"name": "x"}}), "malformed task definition")]:
            (broken / "manifest.json").write_text(content)
            reply = http.post("/v1/adapters/broken", headers=AUTH)
            assert reply.status_code == 422 and message in reply.json()["detail"], reply.text
        # A file changed after the fine-tuning stage saved it is refused (its sha256 is in the manifest).
        (broken / "manifest.json").write_text(json.dumps(manifest))
        (broken / "policy.json").write_text((broken / "policy.json").read_text().replace("0.6", "0.1"))
        reply = http.post("/v1/adapters/broken", headers=AUTH)
        assert reply.status_code == 422 and "policy.json changed since the bundle was written" in reply.json()["detail"]
        (broken / "manifest.json").unlink()
        reply = http.post("/v1/adapters/broken", headers=AUTH)
        assert reply.status_code == 422 and "has no manifest.json" in reply.json()["detail"]
    finally:
        shutil.rmtree(broken)
    assert loaded(http) == ["alpha", "beta"]


def test_load_classify_and_unload_at_run_time(http):
    reply = http.post("/v1/adapters/gamma", json={"path": "nested/gamma"}, headers=AUTH)
    assert reply.status_code == 201, reply.text
    assert reply.json()["path"] == "nested/gamma"
    assert loaded(http) == ["alpha", "beta", "gamma"]
    texts = ["the movie was great", "I hate it"]
    gamma = http.post("/v1/classify", json={"texts": texts, "adapter": "gamma"}).json()
    alpha = http.post("/v1/classify", json={"texts": texts, "adapter": "alpha"}).json()
    assert gamma["results"][0]["raw_probs"] != alpha["results"][0]["raw_probs"]

    # Reloading under an existing name replaces it (here: gamma's weights under the name alpha).
    before = alpha["results"][0]["raw_probs"]
    assert http.post("/v1/adapters/alpha", json={"path": "nested/gamma"}, headers=AUTH).status_code == 201
    replaced = http.post("/v1/classify", json={"texts": texts, "adapter": "alpha"}).json()
    np.testing.assert_allclose(list(replaced["results"][0]["raw_probs"].values()),
                               list(gamma["results"][0]["raw_probs"].values()), atol=1e-6)
    assert replaced["results"][0]["raw_probs"] != before
    assert http.post("/v1/adapters/alpha", headers=AUTH).status_code == 201

    deleted = http.delete("/v1/adapters/gamma", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["name"] == "gamma"
    assert http.post("/v1/classify", json={"texts": texts, "adapter": "gamma"}).status_code == 404
    assert http.delete("/v1/adapters/gamma", headers=AUTH).status_code == 404
    assert loaded(http) == ["alpha", "beta"]
