"""The deployable images and compose file, checked without a Docker engine.

Each Dockerfile is parsed; every file it COPYs must exist in the repository, every script its
HEALTHCHECK / ENTRYPOINT names must be copied in, and every ``nessa`` command line must parse
with the real ``nessa`` parser. The compose file is parsed the same way. The health-check
script and the credential script are run for real against a TLS + token server on loopback.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nessa.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = ("storage.Dockerfile", "trainer.Dockerfile")


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, f"{path.name}: dangling line continuation"
    return out


def _args(text: str) -> list[str]:
    """Exec-form JSON array or shell-form words."""
    text = text.strip()
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def _arg_defaults(instrs) -> dict[str, str]:
    out = {}
    for word, rest in instrs:
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            out[k] = v
    return out


def _copies(instrs):
    for word, rest in instrs:
        if word == "COPY":
            parts = _args(rest)
            flags = [p for p in parts if p.startswith("--")]
            paths = [p for p in parts if not p.startswith("--")]
            yield flags, paths[:-1], paths[-1]


def _nessa_parses(argv: list[str]) -> None:
    """Parse ``nessa ARGV`` with the real parser (SystemExit on any unknown flag or command)."""
    args = build_parser().parse_args(argv)
    assert callable(args.func)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copied_file_exists(name):
    instrs = parse_dockerfile(DOCKER / name)
    n = 0
    for flags, sources, _dest in _copies(instrs):
        if any(f.startswith("--from") for f in flags):
            continue
        for src in sources:
            assert (REPO / src).exists(), f"{name}: COPY {src}: not in the repository"
            n += 1
    assert n >= 5


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned(name):
    instrs = parse_dockerfile(DOCKER / name)
    args = _arg_defaults(instrs)
    for word, rest in instrs:
        if word != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        repo, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: FROM {image} is not pinned to a tag"
        if repo == "debian":
            assert re.fullmatch(r"bookworm-\d{8}-slim", tag), tag
        else:
            assert repo == "pytorch/pytorch" and re.fullmatch(r"\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime", tag), image


def test_storage_image_installs_debians_xrt_runtime_pinned():
    instrs = parse_dockerfile(DOCKER / "storage.Dockerfile")
    version = _arg_defaults(instrs)["XRT_VERSION"]
    # The version Debian bookworm ships (apt-cache policy libxrt1 libxrt-utils).
    assert version == "202210.2.13.466+dfsg-8"
    runs = " ".join(rest for word, rest in instrs if word == "RUN")
    assert '"libxrt1=${XRT_VERSION}"' in runs and '"libxrt-utils=${XRT_VERSION}"' in runs


def test_storage_image_entrypoint_healthcheck_and_command():
    instrs = parse_dockerfile(DOCKER / "storage.Dockerfile")
    d = dict((w, r) for w, r in instrs if w in ("ENTRYPOINT", "CMD", "HEALTHCHECK"))
    assert _args(d["ENTRYPOINT"]) == ["nessa"]
    cmd = _args(d["CMD"])
    assert cmd[0] == "serve"
    _nessa_parses(cmd)
    for flag in ("--tls-cert", "--tls-key", "--token-file"):
        assert flag in cmd  # TLS and a token by default
    hc = d["HEALTHCHECK"]
    assert "--interval=" in hc
    hc_args = _args(hc[hc.index("CMD") + 3:])
    script = hc_args[1]
    assert hc_args[0] == "python" and script == "/opt/nessa/docker/healthcheck.py"
    copied = [(srcs, dest) for _f, srcs, dest in _copies(instrs)]
    assert any(f"docker/{Path(script).name}" in srcs and script.startswith(dest) for srcs, dest in copied)
    # The health-check flags are the script's own.
    sys.path.insert(0, str(DOCKER))
    try:
        import healthcheck
    finally:
        sys.path.remove(str(DOCKER))
    with pytest.raises(SystemExit) as exc:
        healthcheck.main(hc_args[2:] + ["--help"])
    assert exc.value.code == 0


def test_trainer_image_entrypoint():
    instrs = parse_dockerfile(DOCKER / "trainer.Dockerfile")
    d = dict((w, r) for w, r in instrs if w in ("ENTRYPOINT", "CMD"))
    assert _args(d["ENTRYPOINT"]) == ["nessa"]
    assert _args(d["CMD"])[0] == "train"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_services_build_from_the_repository():
    doc = _compose()
    services = doc["services"]
    assert set(services) == {"init", "storage", "trainer"}
    for name, svc in services.items():
        ctx = (DOCKER / svc["build"]["context"]).resolve()
        assert ctx == REPO, name
        assert (ctx / svc["build"]["dockerfile"]).is_file(), name
        assert re.fullmatch(r"nessa-\w+:\d+\.\d+\.\d+", svc["image"]), name
    assert services["storage"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["trainer"]["depends_on"]["storage"]["condition"] == "service_healthy"


def test_compose_commands_are_real_nessa_commands_with_tls_and_token():
    services = _compose()["services"]
    serve = services["storage"]["command"]
    train = services["trainer"]["command"]
    _nessa_parses(serve)
    _nessa_parses(train)
    assert serve[0] == "serve" and train[0] == "train"
    assert serve[serve.index("--backend") + 1] == "emu" and train[train.index("--backend") + 1] == "emu"
    # Both ends use the same credentials from the init volume.
    assert serve[serve.index("--tls-cert") + 1] == train[train.index("--tls-ca") + 1] == "/certs/server.pem"
    assert serve[serve.index("--token-file") + 1] == train[train.index("--token-file") + 1] == "/certs/token"
    host, port = train[train.index("--server") + 1].split(":")
    assert host == "storage" and port == serve[serve.index("--port") + 1]
    hc = services["storage"]["healthcheck"]["test"]
    assert hc[:3] == ["CMD", "python", "/opt/nessa/docker/healthcheck.py"]


def test_compose_init_script_is_copied_into_the_image_and_executable():
    init = _compose()["services"]["init"]
    script = Path(init["entrypoint"][0])
    assert script.parent == Path("/opt/nessa/docker")
    local = DOCKER / script.name
    assert local.is_file() and local.stat().st_mode & 0o111
    instrs = parse_dockerfile(DOCKER / "storage.Dockerfile")
    assert any(f"docker/{script.name}" in srcs for _f, srcs, _d in _copies(instrs))
    # The scripts it calls are there too, and init's nessa command parses.
    assert (DOCKER / "gen-certs.sh").stat().st_mode & 0o111
    text = local.read_text()
    assert "gen-certs.sh" in text and "nessa ingest" in text
    _nessa_parses(["ingest", "/data", "/store/fashion-mnist"])


def test_gpu_overlay_only_adds_devices():
    doc = yaml.safe_load((DOCKER / "compose.gpu.yaml").read_text())
    assert list(doc["services"]) == ["trainer"]
    dev = doc["services"]["trainer"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev["driver"] == "nvidia" and dev["capabilities"] == ["gpu"]


def test_readme_documents_build_and_run():
    text = (DOCKER / "README.md").read_text()
    for needle in ("docker build -f docker/storage.Dockerfile", "docker build -f docker/trainer.Dockerfile",
                   "docker compose -f docker/compose.yaml", "libxrt1", "pyxrt"):
        assert needle in text, needle


# -- the scripts, for real -------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    d = tmp_path_factory.mktemp("certs")
    out = subprocess.run(["sh", str(DOCKER / "gen-certs.sh"), str(d)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return d


def test_gen_certs_makes_a_certificate_key_and_token_once(certs):
    pem, key, token = (certs / "server.pem").read_bytes(), (certs / "server.key").read_bytes(), (certs / "token").read_text()
    assert b"BEGIN CERTIFICATE" in pem and b"PRIVATE KEY" in key and re.fullmatch(r"[0-9a-f]{64}\n", token)
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(certs / "server.pem")],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:storage" in text and "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    # A second run keeps what is there (restarts must not rotate credentials).
    subprocess.run(["sh", str(DOCKER / "gen-certs.sh"), str(certs)], capture_output=True, check=True, timeout=60)
    assert (certs / "token").read_text() == token and (certs / "server.pem").read_bytes() == pem


def _healthcheck(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), *argv], capture_output=True, text=True, timeout=60)


def test_healthcheck_against_a_live_tls_server(certs, tmp_path):
    from storage_service.server import create_server

    token = (certs / "token").read_text().strip()
    server, port = create_server("127.0.0.1:0", store_root=tmp_path, token=token,
                                 tls_cert=certs / "server.pem", tls_key=certs / "server.key")
    try:
        ok = _healthcheck("--port", str(port), "--tls-ca", str(certs / "server.pem"), "--server-name", "localhost")
        assert ok.returncode == 0, ok.stderr
        assert "SERVING" in ok.stderr
        ok = _healthcheck("--port", str(port), "--tls-ca", str(certs / "server.pem"), "--server-name", "storage",
                          "--service", "nessa.v1.Storage", "--token-file", str(certs / "token"))
        assert ok.returncode == 0, ok.stderr
        # Plain text against a TLS port fails, and says so.
        bad = _healthcheck("--port", str(port), "--timeout", "2")
        assert bad.returncode == 1 and "UNAVAILABLE" in bad.stderr
        unknown = _healthcheck("--port", str(port), "--tls-ca", str(certs / "server.pem"), "--server-name", "localhost",
                               "--service", "no.such.Service")
        assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
    finally:
        server.stop(grace=None)
    down = _healthcheck("--port", str(port), "--tls-ca", str(certs / "server.pem"), "--server-name", "localhost",
                        "--timeout", "2")
    assert down.returncode == 1


def test_trainer_image_carries_the_client_side_only():
    """Exactly ``storage_service.CLIENT_MODULES`` of the storage service, no server module."""
    from storage_service import CLIENT_MODULES

    copied = set()
    for _flags, srcs, _dest in _copies(parse_dockerfile(DOCKER / "trainer.Dockerfile")):
        copied.update(s for s in srcs if s.startswith("storage_service"))
    assert "storage_service" not in copied  # never the whole package
    expect = set()
    for m in CLIENT_MODULES:
        path = Path(*m.split("."))
        expect.add(str(path / "__init__.py") if (REPO / path).is_dir() else f"{path}.py")
    assert copied == expect
