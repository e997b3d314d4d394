"""The image's containers for tests, with buildah: no Docker engine and no OCI runtime needed.

`buildah run --isolation chroot --network host` runs a command on the image's files, as the
image's USER, with its ENV and WORKDIR, on the host's network (`podman run` cannot set rlimits
in this sandbox). A signal to `buildah run` itself kills its command, so a test stops the
container the way an engine's `stop` does: SIGTERM to the command's own process.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Container:
    """One working container of an image; `remove()` when done."""

    name: str

    @classmethod
    def create(cls, image: str) -> Container:
        name = f"payment-service-test-{uuid.uuid4().hex[:12]}"
        subprocess.run(
            ["buildah", "from", "--pull-never", "--name", name, image],
            capture_output=True,
            check=True,
        )
        return cls(name)

    def start(
        self,
        command: list[str],
        *,
        environment: dict[str, str],
        volumes: dict[Path, str] | None = None,
        output: IO[bytes] | int | None = None,
    ) -> subprocess.Popen[bytes]:
        """Run `command` in the container (like `docker exec`, or the container's main
        process when it is the image's ENTRYPOINT + CMD)."""
        options: list[str] = []
        for key, value in environment.items():
            options += ["--env", f"{key}={value}"]
        for source, target in (volumes or {}).items():
            options += ["--volume", f"{source}:{target}:ro"]
        return subprocess.Popen(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                "--network",
                "host",
                *options,
                self.name,
                "--",
                *command,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def mount(self) -> Path:
        """The container's root filesystem, as the host sees it."""
        mounted = subprocess.run(
            ["buildah", "mount", self.name], capture_output=True, text=True, check=True
        )
        return Path(mounted.stdout.strip())

    def remove(self) -> None:
        subprocess.run(["buildah", "rm", self.name], capture_output=True, check=False)


def command_process(runner_pid: int) -> int:
    """The pid of the command a `buildah run` process started: the deepest process below it
    (buildah-chroot-runtime -> buildah-chroot-exec -> the command)."""
    pid = runner_pid
    while children := _children(pid):
        [pid] = children
    assert pid != runner_pid, "buildah run has not started its command"
    return pid


def process_command(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().rstrip("\0").split("\0")


def process_uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(uid) for uid in line.split()[1:]}
    raise AssertionError(f"no Uid line for process {pid}")


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The name field is in parentheses and may hold spaces: the ppid follows it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children
