"""Build the tiny test image the docker tier runs, without any registry.

The machine running the tests has no registry access, so the image is made locally: a root
filesystem holding ``/bin/busybox`` (busybox-static) plus one symlink per applet, streamed as
a tar into ``docker import``. ``busybox httpd -f -p 8080 -h /www`` gives a real HTTP workload,
``sh -c 'exit 1'`` a crashing one. Building is idempotent: an existing image is reused, so
the session fixture costs one ``inspect`` after the first run.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

TEST_IMAGE = "edgefleet-test/busybox:latest"
BUSYBOX = Path("/bin/busybox")

# The applets the tests use; busybox dispatches on argv[0], so a symlink is an applet.
APPLETS = (
    "sh", "httpd", "sleep", "wget", "cat", "echo", "ls", "env", "pwd", "true", "false",
    "id", "kill", "ps", "touch", "mkdir", "rm", "nc", "printf", "test", "head", "dd",
)  # fmt: skip


class ImageUnavailable(RuntimeError):
    """The test image cannot be built here (no busybox, no docker CLI, import failed)."""


def _rootfs_tar() -> bytes:
    """A tar of the image's root filesystem, built in memory (a few MB, no temp dirs)."""
    if not BUSYBOX.is_file():
        raise ImageUnavailable(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "www", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            info.mtime = int(now)
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            link.mtime = int(now)
            tar.addfile(link)
        page = b"edgefleet test page\n"
        index = tarfile.TarInfo("www/index.html")
        index.size = len(page)
        index.mode = 0o644
        index.mtime = int(now)
        tar.addfile(index, io.BytesIO(page))
        # Docker's resolver and user lookups want these to exist.
        for name, content in (
            ("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n"),
            ("etc/group", b"root:x:0:\n"),
        ):
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            entry.mode = 0o644
            entry.mtime = int(now)
            tar.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def image_present(image: str = TEST_IMAGE) -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    found = subprocess.run(
        [docker, "image", "inspect", image], capture_output=True, check=False, timeout=30
    )
    return found.returncode == 0


def ensure_test_image(image: str = TEST_IMAGE) -> str:
    """Build ``image`` unless it is already there; return its name."""
    if image_present(image):
        return image
    docker = shutil.which("docker")
    if docker is None:
        raise ImageUnavailable("the docker CLI is not installed")
    result = subprocess.run(
        [docker, "import", "--change", 'CMD ["/bin/sh"]', "-", image],
        input=_rootfs_tar(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise ImageUnavailable(f"docker import failed: {result.stderr.decode(errors='replace')}")
    return image
