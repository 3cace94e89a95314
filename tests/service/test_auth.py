"""TLS and bearer-token auth over real sockets: missing or wrong tokens are refused."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.service.helpers import make_root, running, self_signed
from storage_service.auth import TOKEN_ENV, load_token
from storage_service.client import StorageClient, StorageError
from storage_service.server import create_server
from storage_service.tls import server_credentials

TOKEN = "s3cret-token_123"


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(tmp)
    root = make_root(tmp / "root")
    with running(root, token=TOKEN, tls_cert=cert, tls_key=key) as (_, port):
        yield f"127.0.0.1:{port}", cert


def _code(fn, *a, **kw):
    with pytest.raises(StorageError) as info:
        out = fn(*a, **kw)
        if hasattr(out, "__next__"):
            list(out)
    return info.value.code


def test_tls_with_token_works(secure):
    target, cert = secure
    with StorageClient(target, token=TOKEN, root_cert=cert) as c:
        assert [d.name for d in c.list_datasets()] == ["a", "img/b"]
        assert sum(b.count for b in c.stream_samples("img/b")) == 90
    with StorageClient(target.replace("127.0.0.1", "localhost"), token=TOKEN, root_cert=cert.read_bytes()) as c:
        assert c.get_dataset("a").num_samples == 600


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", TOKEN[:-1]])
def test_missing_or_wrong_token_refused(secure, token):
    target, cert = secure
    with StorageClient(target, token=token, root_cert=cert, retries=0) as c:
        assert _code(c.list_datasets) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(c.select, "a", "random", 0.5) == grpc.StatusCode.UNAUTHENTICATED
        assert _code(c.stream_samples, "a") == grpc.StatusCode.UNAUTHENTICATED
        assert _code(c.push_model, "small_cnn", b"x" * 10, 1) == grpc.StatusCode.UNAUTHENTICATED


def test_health_open_without_token_plaintext_refused(secure):
    target, cert = secure
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(target, creds) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with StorageClient(target, token=TOKEN, retries=0, timeout=5) as c:  # no TLS: handshake fails
        assert _code(c.list_datasets) == grpc.StatusCode.UNAVAILABLE


def test_token_without_tls_still_checked(tmp_path):
    root = make_root(tmp_path)
    with running(root, token=TOKEN) as (_, port):
        with StorageClient(f"127.0.0.1:{port}", token=TOKEN) as c:
            assert c.get_dataset("a").num_samples == 600
        with StorageClient(f"127.0.0.1:{port}", retries=0) as c:
            assert _code(c.get_dataset, "a") == grpc.StatusCode.UNAUTHENTICATED


def test_load_token(tmp_path, monkeypatch):
    f = tmp_path / "tok"
    f.write_text(TOKEN + "\n")
    assert load_token(f) == TOKEN
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert load_token(None) == "from-env"
    monkeypatch.delenv(TOKEN_ENV)
    assert load_token(None) is None
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        load_token(tmp_path / "empty")
    with pytest.raises(ValueError, match="cannot read"):
        load_token(tmp_path / "absent")
    (tmp_path / "spaced").write_text("a b")
    with pytest.raises(ValueError, match="whitespace"):
        load_token(tmp_path / "spaced")


def test_bad_tls_configuration_named(tmp_path):
    cert, key = self_signed(tmp_path)
    (tmp_path / "junk.pem").write_text("not pem")
    with pytest.raises(ValueError, match="not a PEM"):
        server_credentials(tmp_path / "junk.pem", key)
    with pytest.raises(ValueError, match="no private key"):
        server_credentials(cert, cert)
    with pytest.raises(ValueError, match="cannot read"):
        server_credentials(tmp_path / "absent.pem", key)
    with pytest.raises(ValueError, match="both"):
        create_server("127.0.0.1:0", tmp_path, tls_cert=cert)
