"""`make image`: build the container image from the Dockerfile with buildah, no Docker engine.

    python -m devtools.image [--tag payment-service:latest]

- The base (the Dockerfile's `FROM`, `python:3.11-slim`) comes from local image storage:
  the build itself never pulls (`--pull-never`). When it is missing, `IMAGE_PULL_BASE=1`
  pulls the real one (where its registry is reachable, as on GitHub). Otherwise a stand-in
  of the same name is made from Debian's own packages (mmdebstrap: bookworm's python3 3.11,
  python3-venv, ca-certificates), imported, and its tarball cached in ./.data/image/ so a
  machine builds it only once. The output says which base was used; a real user builds
  against the real base (`docker build` pulls it).
- Where this network intercepts TLS, pip inside the build needs the host's CA bundle: the
  file `$PIP_CERT` names is lent to the build as the secret `pip_cert`, which only the pip
  step mounts (`RUN --mount=type=secret`), so it is never part of a layer. (A `--volume`
  would do for every RUN step and leave its mount point behind in the final stage.) Where
  `PIP_CERT` is unset, nothing is lent.
- Writes the image's SBOM (CycloneDX JSON, from requirements.txt: every Python package the
  image installs, pinned and hashed) to build/image/sbom.cdx.json, and a summary
  (build time, sizes, base) to build/image/build.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools.cli import command_parser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.txt"
CACHE = Path(os.environ.get("PAYMENT_DATA_DIR", str(ROOT / ".data"))) / "image"
OUT = ROOT / "build" / "image"
DEFAULT_TAG = "payment-service:latest"
# Set on the stand-in base only, so anyone inspecting an image can tell it from the real one.
STAND_IN_LABEL = "payment-service.stand-in-base"
STAND_IN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
STAND_IN_SUITE = "bookworm"  # Debian's Python 3.11, as python:3.11-slim has


@dataclass(frozen=True)
class BuildReport:
    image: str
    base: str
    base_kind: str  # "local" (already in storage), "pulled" or "stand-in"
    build_seconds: float
    image_bytes: int
    base_bytes: int
    sbom: str


def say(text: str) -> None:
    print(f"[make image] {text}", flush=True)


def run(
    args: list[str], *, check: bool = True, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run one of the image tools; `quiet` captures its output (shown if it fails)."""
    done = subprocess.run(  # noqa: S603 - buildah, podman, mmdebstrap, cyclonedx: our arguments
        args, check=False, text=True, capture_output=quiet
    )
    if check and done.returncode != 0:
        sys.stderr.write((done.stdout or "") + (done.stderr or ""))
        raise SystemExit(f"{args[0]} failed (exit {done.returncode}): {' '.join(args[:3])} …")
    return done


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def base_image() -> str:
    """The fully qualified name of the Dockerfile's base, as buildah stores it."""
    names: set[str] = set(re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.M))
    if len(names) != 1:
        raise SystemExit(f"expected one base image in the Dockerfile, found {sorted(names)}")
    [name] = names
    if "/" not in name.split(":")[0]:
        name = f"docker.io/library/{name}"
    return name


def image_exists(name: str) -> bool:
    return (
        run(["buildah", "inspect", "--type", "image", name], check=False, quiet=True).returncode
        == 0
    )


def image_id(name: str) -> str | None:
    listed = run(
        ["buildah", "images", "--noheading", "--no-trunc", "--format", "{{.ID}}", name],
        check=False,
        quiet=True,
    )
    return (listed.stdout.strip() or None) if listed.returncode == 0 else None


def image_config(name: str) -> dict[str, Any]:
    """The image's Docker config (Entrypoint, Cmd, User, Env, Healthcheck, Labels…)."""
    inspected = run(["buildah", "inspect", "--type", "image", name], quiet=True)
    config: dict[str, Any] = json.loads(inspected.stdout)["Docker"]["config"]
    return config


def image_bytes(name: str) -> int:
    size = run(["podman", "image", "inspect", "--format", "{{.Size}}", name], quiet=True)
    return int(size.stdout.strip())


def is_stand_in(name: str) -> bool:
    return STAND_IN_LABEL in (image_config(name).get("Labels") or {})


def ensure_base(name: str) -> str:
    """Make sure the base is in local storage; returns how: "local", "pulled", "stand-in"."""
    if image_exists(name):
        kind = "stand-in" if is_stand_in(name) else "local"
        say(f"base {name}: in local storage ({kind})")
        return kind
    if os.environ.get("IMAGE_PULL_BASE") == "1":
        say(f"base {name} is not in local storage: pulling it (IMAGE_PULL_BASE=1)")
        run(["buildah", "pull", "--quiet", name], quiet=True)
        return "pulled"
    tarball = CACHE / f"{name.rsplit('/', 1)[-1].replace(':', '-')}.stand-in.tar"
    say(f"base {name} is not in local storage (IMAGE_PULL_BASE=1 would pull it from its")
    say("registry, which these machines cannot reach):")
    say(
        f"standing in a base of the same name built from Debian {STAND_IN_SUITE}'s packages "
        f"({STAND_IN_PACKAGES}). Real users build against the real base."
    )
    if tarball.exists():
        say(f"using the stand-in cached in {shown(tarball)} (built once per machine)")
    else:
        say(f"building it with mmdebstrap (about a minute); cached in {shown(tarball)}")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        started = time.monotonic()
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={STAND_IN_PACKAGES}",
                STAND_IN_SUITE,
                str(partial),
            ]
        )
        partial.rename(tarball)  # only a complete tarball is ever reused
        say(f"stand-in base built in {time.monotonic() - started:.0f} s")
    run(
        [
            "podman",
            "import",
            "--quiet",
            "--change",
            f"LABEL {STAND_IN_LABEL}=mmdebstrap-{STAND_IN_SUITE}",
            "--change",
            'CMD ["python3"]',
            str(tarball),
            name,
        ],
        quiet=True,
    )
    return "stand-in"


def certificate_secret() -> list[str]:
    """The host's CA bundle as the build secret `pip_cert`, which only the pip step mounts."""
    cert = os.environ.get("PIP_CERT")
    if not cert:
        return []
    say(f"lending $PIP_CERT ({cert}) to the build's pip step as a build secret (never a layer)")
    return ["--secret", f"id=pip_cert,src={cert}"]


def build(tag: str) -> BuildReport:
    for tool in ("buildah", "podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: `make image` installs it with apt-get")
    base = base_image()
    kind = ensure_base(base)
    previous = image_id(tag)
    started = time.monotonic()
    run(
        [
            "buildah",
            "bud",
            "--quiet",
            "--format",
            "docker",  # the OCI format has no HEALTHCHECK
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--pull-never",
            *certificate_secret(),
            "--tag",
            tag,
            "--file",
            str(DOCKERFILE),
            str(ROOT),
        ]
    )
    seconds = time.monotonic() - started
    if previous and previous != image_id(tag):
        # The tag moved to the new build: the old one would only fill the disk, build by build.
        run(["buildah", "rmi", previous], check=False, quiet=True)
    OUT.mkdir(parents=True, exist_ok=True)
    sbom = OUT / "sbom.cdx.json"
    run(
        [
            sys.executable,
            # A requirements file carries no dependency graph: the SBOM lists components only.
            "-W",
            "ignore:The Component this BOM is describing",
            "-m",
            "cyclonedx_py",
            "requirements",
            "--output-reproducible",
            "--pyproject",
            str(ROOT / "pyproject.toml"),
            "--output-format",
            "JSON",
            "--output-file",
            str(sbom),
            str(LOCK),
        ]
    )
    report = BuildReport(
        image=tag,
        base=base,
        base_kind=kind,
        build_seconds=round(seconds, 1),
        image_bytes=image_bytes(tag),
        base_bytes=image_bytes(base),
        sbom=shown(sbom),
    )
    (OUT / "build.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def main() -> int:
    parser = command_parser("devtools.image", __doc__)
    parser.add_argument("--tag", default=os.environ.get("IMAGE", DEFAULT_TAG))
    args = parser.parse_args()
    report = build(args.tag)
    mb = 1_000_000
    say(f"built {report.image} in {report.build_seconds:.0f} s")
    say(
        f"size {report.image_bytes / mb:.1f} MB: base {report.base_bytes / mb:.1f} MB "
        f"({report.base_kind}) + {(report.image_bytes - report.base_bytes) / mb:.1f} MB of ours"
    )
    say(f"SBOM (CycloneDX, from requirements.txt): {report.sbom}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
