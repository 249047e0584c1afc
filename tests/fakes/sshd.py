"""A real OpenSSH server on 127.0.0.1 in front of a bare repository, and a way to run a step
script as a pod's uid under its image's user database.

- :class:`Sshd` runs Debian's ``/usr/sbin/sshd`` (openssh-server, installed by scripts/test.sh)
  in the foreground on a free port, with its own host key, key-only login for this machine's root
  (git's upload-pack and receive-pack run as root on the server side) and the given authorised
  key. ``known_hosts_line`` is the pinned entry for it.
- :func:`as_pod_user` runs a command as the uid a pod's ``securityContext`` names, the way the
  container runtime does (``setpriv --reuid/--regid``, supplementary groups from ``fsGroup``), in
  a private mount namespace where ``/etc/passwd`` and ``/etc/group`` are the image's. OpenSSH's
  ``ssh`` exits at start ("No user exists for uid N") when the uid has no entry there.

Both need root (sshd's privilege separation, setpriv, mount namespaces); tests skip without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
# /etc/passwd and /etc/group of docker.io/alpine/git (Alpine's base accounts plus git-user)
ALPINE_GIT_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
git-user:x:1000:1000:Linux User,,,:/home/git-user:/bin/sh
"""
ALPINE_GIT_GROUP = """\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
nobody:x:65534:
git-user:x:1000:git-user
"""


def require_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: sshd privilege separation, setpriv and a mount namespace")
    for tool in (SSHD, "setpriv", "unshare", "ssh-keygen"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (scripts/test.sh installs openssh-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    def __init__(self, root: Path, authorized_key: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.port = _free_port()
        self.host_key = root / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True
        )
        auth = root / "authorized_keys"
        auth.write_text(authorized_key)
        auth.chmod(0o600)
        self.log = root / "sshd.log"
        self.config = root / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {auth}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "AllowUsers root",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts_line(self) -> str:
        key = Path(f"{self.host_key}.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def url(self, repo: Path) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{repo}"

    def __enter__(self) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("sshd exited: " + self.log.read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start: " + self.log.read_text())

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(5)


def as_pod_user(
    argv: list[str],
    *,
    uid: int,
    gid: int,
    fs_group: int | None,
    etc: Path,
    passwd: str = ALPINE_GIT_PASSWD,
    group: str = ALPINE_GIT_GROUP,
) -> list[str]:
    """``argv`` wrapped to run as the pod's uid with the image's user database."""
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(group)
    for f in ("passwd", "group"):
        (etc / f).chmod(0o644)
    groups = ["--clear-groups"] if fs_group in (None, gid) else [f"--groups={fs_group}"]
    inner = (
        f'mount --bind "{etc}/passwd" /etc/passwd && mount --bind "{etc}/group" /etc/group && '
        'exec "$@"'
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        inner,
        "sh",
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        *groups,
        "--",
        *argv,
    ]
