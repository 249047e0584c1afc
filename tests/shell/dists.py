"""Small, real wheels and sdists made by hand (fast and deterministic, no build backend run)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def metadata(name: str, version: str, requires_python: str = ">=3.9") -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: a test package for thinkube-devpi\n"
        f"Requires-Python: {requires_python}\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Classifier: License :: OSI Approved :: Apache Software License\n"
    )


def make_wheel(
    directory: Path, name: str, version: str, requires_python: str = ">=3.9", padding: int = 0
) -> Path:
    """A pure-Python wheel with a module `<name>` whose VALUE is the version."""
    norm = name.replace("-", "_")
    path = directory / f"{norm}-{version}-py3-none-any.whl"
    files = {
        f"{norm}/__init__.py": f'VALUE = "{version}"\n',
        f"{norm}-{version}.dist-info/METADATA": metadata(name, version, requires_python),
        f"{norm}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: thinkube-devpi-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, text in files.items():
            data = text.encode()
            zf.writestr(arc, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arc},sha256={digest},{len(data)}")
        if padding:
            # incompressible filler for size benchmarks, written in chunks
            info = zipfile.ZipInfo(f"{norm}/filler.bin")
            with zf.open(info, "w", force_zip64=True) as fh:
                seed = hashlib.sha256(b"filler").digest()
                left = padding
                while left > 0:
                    block = hashlib.sha512(seed + left.to_bytes(8, "big")).digest() * 1024
                    fh.write(block[:left])
                    left -= len(block)
            record.append(f"{norm}/filler.bin,,")
        record.append(f"{norm}-{version}.dist-info/RECORD,,")
        zf.writestr(f"{norm}-{version}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def make_sdist(directory: Path, name: str, version: str, requires_python: str = ">=3.9") -> Path:
    norm = name.replace("-", "_")
    base = f"{norm}-{version}"
    path = directory / f"{base}.tar.gz"
    members = {
        f"{base}/PKG-INFO": metadata(name, version, requires_python),
        f"{base}/pyproject.toml": (
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ),
        f"{base}/{norm}/__init__.py": f'VALUE = "{version}"\n',
    }
    with tarfile.open(path, "w:gz") as tf:
        for arc, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
