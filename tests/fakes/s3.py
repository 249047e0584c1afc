"""An S3 server on 127.0.0.1 for the backup tests.

thinkube's object storage is SeaweedFS (its S3 gateway at https://s3.<domain>). When a `weed`
binary is there (scripts/test.sh builds it from SeaweedFS's Go module, pinned, into
.cache/bin/weed; or THINKUBE_DEVPI_WEED names one) the tests run against it: `weed server` with
its S3 gateway and an identity file, so wrong credentials are refused as on thinkube. Without it
they run against moto's server mode, a STAND-IN for SeaweedFS: moto checks SigV4 signatures only
after INITIAL_NO_AUTH_ACTION_COUNT requests, which the fixture spends creating the access key.
`S3Server.kind` says which one a test ran against.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEED_DEFAULT = ROOT / ".cache" / "bin" / "weed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed_binary() -> Path | None:
    env = os.environ.get("THINKUBE_DEVPI_WEED")
    if env:
        return Path(env)
    return WEED_DEFAULT if WEED_DEFAULT.is_file() else None


@dataclass
class S3Server:
    base: Path
    kind: str = ""
    port: int = 0
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    process: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        """The key prefix tests use: the product's default ``devpi/`` on SeaweedFS. moto's server
        checks the signature of a ListObjectsV2 whose prefix holds a '/' against a query string it
        re-encodes differently (SignatureDoesNotMatch), so under moto the prefix has none."""
        return "devpi/" if self.kind == "seaweedfs" else "devpi-"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, secret_key: str | None = None):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    # -- start and stop

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        weed = weed_binary()
        if weed is not None:
            self._start_weed(weed)
        else:
            self._start_moto()

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        log.close()

    def _wait(self, url: str, ok: tuple[int, ...], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.base / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.kind} exited: {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=1).status_code in ok:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not answer within {timeout} s")

    def _start_weed(self, weed: Path) -> None:
        self.kind = "seaweedfs"
        self.port = _free_port()
        config = self.base / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "backup",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        data = self.base / "data"
        data.mkdir(exist_ok=True)
        ports = {name: _free_port() for name in ("master", "volume", "filer")}
        grpc = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
        self._spawn(
            [
                str(weed),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}",
                f"-master.port.grpc={grpc['master']}",
                f"-volume.port={ports['volume']}",
                f"-volume.port.grpc={grpc['volume']}",
                # every bucket is a collection with volumes of its own: room for many small ones
                "-volume.max=200",
                "-master.volumeSizeLimitMB=64",
                "-filer",
                f"-filer.port={ports['filer']}",
                f"-filer.port.grpc={grpc['filer']}",
                "-s3",
                f"-s3.port={self.port}",
                f"-s3.port.grpc={grpc['s3']}",
                f"-s3.config={config}",
                "-s3.port.iceberg=0",  # the catalogs' fixed ports would collide between workers
                "-s3.port.lance=0",
            ]
        )
        # an unsigned request is refused (403) once the gateway is up with its identities
        self._wait(self.endpoint, (200, 403), timeout=90)

    def _start_moto(self) -> None:
        self.kind = "moto (stand-in for SeaweedFS)"
        self.port = _free_port()
        moto = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        self._spawn([moto, "-H", "127.0.0.1", "-p", str(self.port)], env=env)
        self._wait(f"{self.endpoint}/moto-api/", (200,))
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="backup")
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        iam.put_user_policy(
            UserName="backup",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the session; tests make their own buckets."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket("devpi-" + secrets.token_hex(4))
