"""Back up and restore N MB of generated packages; wall time and peak memory of each side,
against a plain multipart upload (and download) of the same files to the same S3 in one run.

    python3 bench/bench_backup.py [--mb 1024] [--wheel-mb 50] [--small-mb 128]

A real devpi-server (127.0.0.1) gets wheels of incompressible filler; S3 is SeaweedFS's `weed`
(.cache/bin/weed, built by scripts/test.sh) or moto's server mode as a stand-in (said in the
output). Each measured side runs in a child process of its own, so its peak RSS (ru_maxrss) is
its own; devpi-export and devpi-import are children of those and are reported separately.
The backup is run at two sizes (--small-mb and --mb): "memory flat in the data size" means the
peak RSS of the streaming side grows by less than 50 MB between them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

CHILD = r"""
import json, os, resource, sys, time
sys.path[:0] = [{src!r}, {tests!r}]
from pathlib import Path
from thinkube_devpi.installer.backup import core
spec = json.loads(sys.argv[1])
cfg = core.S3Config(endpoint=spec["endpoint"], bucket=spec["bucket"], prefix=spec["prefix"])
target = core.S3Target(cfg, core.Credentials(os.environ["BENCH_AK"], os.environ["BENCH_SK"]))
t = time.perf_counter()
out = {{}}
if spec["what"] == "backup":
    m = core.backup(Path(spec["serverdir"]), target, Path(spec["work"]))
    out["id"] = m.id
    out["bytes"] = m.archive_size
elif spec["what"] == "restore":
    r = core.restore(target, spec["id"], Path(spec["serverdir"]), Path(spec["work"]))
    out["bytes"] = r.manifest.archive_size
elif spec["what"] == "plain-upload":
    import boto3.s3.transfer as tr
    files = sorted(p for p in Path(spec["dir"]).rglob("*") if p.is_file())
    for p in files:
        target.client.upload_file(str(p), spec["bucket"], "plain/" + p.name,
                                  Config=tr.TransferConfig(multipart_chunksize=8 * 1024 * 1024))
    out["bytes"] = sum(p.stat().st_size for p in files)
elif spec["what"] == "plain-download":
    dest = Path(spec["dir"]); dest.mkdir(parents=True, exist_ok=True)
    keys = [o["Key"] for o in target.client.list_objects_v2(Bucket=spec["bucket"], Prefix="plain/")["Contents"]]
    for k in keys:
        target.client.download_file(spec["bucket"], k, str(dest / k.split("/")[-1]))
    out["bytes"] = sum(p.stat().st_size for p in dest.iterdir())
out["seconds"] = time.perf_counter() - t
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(out))
"""


def side(spec: dict, env: dict[str, str]) -> dict:
    code = CHILD.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"))
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{spec['what']} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fill(server, total_mb: int, wheel_mb: int, work: Path) -> int:  # type: ignore[no-untyped-def]
    import base64

    import httpx

    from shell.dists import make_wheel

    url = server.url
    r = httpx.post(f"{url}+login", json={"user": "root", "password": server.root_password})
    token = base64.b64encode(f"root:{r.json()['result']['password']}".encode()).decode()
    auth = {"X-Devpi-Auth": token, "Accept": "application/json"}
    httpx.put(f"{url}root/bench", json={"type": "stage", "bases": []}, headers=auth).raise_for_status()
    n = max(1, total_mb // wheel_mb)
    for i in range(n):
        wheel = make_wheel(work, "tkbench", f"1.{i}", padding=wheel_mb * 1024 * 1024)
        with wheel.open("rb") as fh:
            r = httpx.post(
                f"{url}root/bench/",
                data={":action": "file_upload", "name": "tkbench", "version": f"1.{i}"},
                files={"content": (wheel.name, fh)},
                headers=auth,
                timeout=600,
            )
        r.raise_for_status()
        wheel.unlink()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--small-mb", type=int, default=128)
    parser.add_argument("--wheel-mb", type=int, default=50)
    args = parser.parse_args()

    from fakes.devpi_server import DevpiServer
    from fakes.s3 import S3Server

    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        base = Path(tmp)
        s3 = S3Server(base / "s3")
        s3.start()
        env = dict(os.environ, BENCH_AK=s3.access_key, BENCH_SK=s3.secret_key)
        print(f"S3: {s3.kind} at {s3.endpoint}")
        try:
            results = {}
            for label, mb in (("small", args.small_mb), ("large", args.mb)):
                server = DevpiServer(base / f"devpi-{label}")
                server.init()
                server.start()
                t = time.perf_counter()
                n = fill(server, mb, args.wheel_mb, base)
                print(f"[{label}] filled devpi with {n} wheels of {args.wheel_mb} MB in {time.perf_counter() - t:.1f} s")
                bucket = s3.create_bucket(f"bench-{label}")
                common = {"endpoint": s3.endpoint, "bucket": bucket, "prefix": s3.prefix}
                b = side({**common, "what": "backup", "serverdir": str(server.serverdir), "work": str(server.base / "work")}, env)
                server.stop()
                r = side({**common, "what": "restore", "id": b["id"], "serverdir": str(base / f"restored-{label}" / "server"), "work": str(base / f"restored-{label}" / "work")}, env)
                files = server.serverdir / "+files"
                p = side({**common, "what": "plain-upload", "dir": str(files)}, env)
                d = side({**common, "what": "plain-download", "dir": str(base / f"plain-{label}")}, env)
                results[label] = {"mb": mb, "backup": b, "restore": r, "plain_upload": p, "plain_download": d}
                for name in ("backup", "restore", "plain_upload", "plain_download"):
                    x = results[label][name]
                    rate = x["bytes"] / x["seconds"] / 1e6
                    print(f"[{label}] {name:>14}: {x['seconds']:7.1f} s  {rate:6.1f} MB/s  "
                          f"peak RSS {x['peak_rss_mb']:6.1f} MB  (children {x['children_peak_rss_mb']:.1f} MB)")
                import shutil

                shutil.rmtree(server.base, ignore_errors=True)
                shutil.rmtree(base / f"restored-{label}", ignore_errors=True)
                shutil.rmtree(base / f"plain-{label}", ignore_errors=True)
            small, large = results["small"], results["large"]
            growth = large["backup"]["peak_rss_mb"] - small["backup"]["peak_rss_mb"]
            rgrowth = large["restore"]["peak_rss_mb"] - small["restore"]["peak_rss_mb"]
            print(f"peak RSS growth {args.small_mb} MB -> {args.mb} MB: backup {growth:+.1f} MB, restore {rgrowth:+.1f} MB")
            ratio_b = large["backup"]["seconds"] / large["plain_upload"]["seconds"]
            ratio_r = large["restore"]["seconds"] / large["plain_download"]["seconds"]
            print(f"time against plain multipart: backup {ratio_b:.2f}x the upload, restore {ratio_r:.2f}x the download")
            print(json.dumps(results))
        finally:
            s3.stop()


if __name__ == "__main__":
    main()
