"""An aarch64 Python with the real aarch64 builds of onnxruntime and ai-edge-litert, run under
user-mode QEMU as a given Arm core: what `edgezoo verify --arch arm64` runs artifacts in.

Set up once and cached under ``$EDGEZOO_HOME/arm64/``, from package registries only:
- Debian bookworm's arm64 ``python3.11`` and the libraries it needs, fetched by ``apt-get`` with a
  private configuration (its own state, cache and architecture) and unpacked with ``dpkg -x``:
  the host's package database never learns of arm64;
- the runtimes' aarch64 wheels, ``pip download``-ed for every manylinux aarch64 tag (ai-edge-litert
  2.x is tagged manylinux_2_27, and pip silently takes an old release when that tag is not listed),
  at the host's own versions, and unzipped onto the guest's path;
- per core, a root whose ``/proc/cpuinfo`` is that core's text. QEMU 7.2 shows the guest the x86
  host's, which the runtimes' CPU detection cannot parse (onnxruntime segfaults at import); QEMU's
  ``-L`` prefix serves the file from the root instead. ``-cpu max`` is never used: under QEMU 7.2
  XNNPACK's int8 results came out wrong with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import EdgezooError

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
GUEST_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgcc-s1", "zlib1g")
GUEST_PYTHON = "usr/bin/python3.11"
WHEELS = ("onnxruntime", "ai-edge-litert", "numpy")   # at the host's versions
PLATFORM_TAGS = tuple(f"manylinux_2_{v}_aarch64" for v in range(17, 37)) + ("manylinux2014_aarch64", "linux_aarch64")


@dataclass(frozen=True)
class Core:
    """An Arm core as QEMU models it and as Linux describes it in /proc/cpuinfo."""

    qemu_cpu: str
    part: str
    variant: str
    revision: int
    features: str
    found_in: str


CORES = {
    "cortex-a53": Core("cortex-a53", "0xd03", "0x0", 4, "fp asimd evtstrm crc32 cpuid", "Raspberry Pi 3 and Zero 2, phones' little cores"),
    "cortex-a72": Core("cortex-a72", "0xd08", "0x0", 3, "fp asimd evtstrm crc32 cpuid", "Raspberry Pi 4"),
    "cortex-a76": Core("cortex-a76", "0xd0b", "0x4", 1,
                       "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
                       "Raspberry Pi 5, phones' big cores (Pixel 6-7 class)"),
}
DEFAULT_CORES = ("cortex-a72", "cortex-a76")


class EmulationUnavailable(EdgezooError):
    """What the emulated aarch64 Python needs is missing from this host; the message says how to get it."""


def check_cores(names: list[str]) -> list[str]:
    from ..errors import BadInput, did_you_mean

    for name in names:
        if name == "max":
            raise BadInput(f"--cpu 'max' is not emulated: QEMU 7.2's 'max' core gave XNNPACK wrong int8 results; pass some of {', '.join(CORES)}")
        if name not in CORES:
            raise BadInput(f"--cpu {name!r} is not a core edgezoo emulates: {did_you_mean(name, CORES)}pass some of {', '.join(CORES)}")
    if not names:
        raise BadInput(f"--cpu is empty: pass some of {', '.join(CORES)}")
    return list(dict.fromkeys(names))


def qemu_binary() -> str:
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        found = shutil.which(name)
        if found:
            return found
    raise EmulationUnavailable("qemu-aarch64-static is not installed: install it with `sudo apt-get install qemu-user-static` "
                               "(Debian, Ubuntu) or `sudo dnf install qemu-user-static` (Fedora), then run again")


def cpuinfo_text(core: Core, processors: int) -> str:
    one = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {c.features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
           "CPU variant\t: {c.variant}\nCPU part\t: {c.part}\nCPU revision\t: {c.revision}\n\n")
    return "".join(one.format(i=i, c=core) for i in range(processors))


def _host_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in WHEELS}


class Guest:
    """The cached setup: ``command(core, *args)`` is the argv that runs the aarch64 Python as ``core``."""

    def __init__(self, root: Path, qemu: str):
        self.root, self.qemu = root, qemu
        self.info = json.loads((root / "setup.json").read_text())

    def core_root(self, core: str) -> Path:
        return self.root / "cores" / core

    def command(self, core: str, *args: str) -> list[str]:
        prefix = self.core_root(core)
        return [self.qemu, "-L", str(prefix), "-cpu", CORES[core].qemu_cpu, str(prefix / GUEST_PYTHON), "-s", *args]

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(self.root / "site"), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "LANG": "C.UTF-8", "HOME": str(self.root), "OMP_NUM_THREADS": "1"}


def guest(say=lambda text: None) -> Guest:
    """The emulated aarch64 Python, set up first if this host's cache lacks it (about 30 s and
    250 MB; keyed by the host's runtime versions, so the guest always runs the versions the host
    checked with)."""
    qemu = qemu_binary()
    versions = _host_versions()
    key = hashlib.sha256(json.dumps([DEBIAN_SUITE, GUEST_PACKAGES, versions, sorted(CORES.items())], default=str).encode()).hexdigest()[:12]
    base = paths.home() / "arm64"
    root = base / key
    if (root / "setup.json").is_file():
        return Guest(root, qemu)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be setting up the same: wait, then use its result
        if not (root / "setup.json").is_file():
            _set_up(root, versions, say)
    return Guest(root, qemu)


def _set_up(root: Path, versions: dict[str, str], say) -> None:
    staging = root.with_name(root.name + f".staging-{os.getpid()}")
    for stale in root.parent.glob(root.name + ".staging-*"):  # a killed setup's leftovers (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        say("arm64: fetching Debian's arm64 Python")
        debs = _fetch_debs(staging / "apt")
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging / "root")], check=True, capture_output=True)
        say("arm64: fetching the runtimes' aarch64 wheels")
        wheels = _fetch_wheels(staging / "wheels", versions)
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(staging / "site")
        for name, core in CORES.items():
            core_root = staging / "cores" / name
            (core_root / "proc").mkdir(parents=True)
            for top in (staging / "root").iterdir():  # everything but /proc comes from the Debian root
                (core_root / top.name).symlink_to(Path("..", "..", "root", top.name))
            (core_root / "proc" / "cpuinfo").write_text(cpuinfo_text(core, os.cpu_count() or 1))
        shutil.rmtree(staging / "apt")
        info = {"debian": DEBIAN_SUITE, "packages": sorted(d.name for d in debs), "wheels": sorted(w.name for w in wheels), "host_versions": versions}
        (staging / "setup.json").write_text(json.dumps(info, indent=1) + "\n")
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_debs(apt: Path) -> list[Path]:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise EmulationUnavailable("setting up the arm64 Python needs apt-get and dpkg-deb (a Debian or Ubuntu host) to fetch "
                                   "Debian's arm64 python3.11; run edgezoo verify on such a host or in a Debian container")
    if not Path(DEBIAN_KEYRING).is_file():
        raise EmulationUnavailable(f"{DEBIAN_KEYRING} is missing: install it with `sudo apt-get install debian-archive-keyring`, then run again")
    for d in ("state/lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "state" / "status").write_text("")  # an empty package database: every dependency is fetched
    mirror = os.environ.get("EDGEZOO_DEBIAN_MIRROR", DEBIAN_MIRROR)
    (apt / "etc" / "sources.list").write_text(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {DEBIAN_SUITE} main\n")
    conf = {"APT::Architecture": "arm64", "Dir::State": apt / "state", "Dir::State::status": apt / "state" / "status",
            "Dir::Cache": apt / "cache", "Dir::Etc::SourceList": apt / "etc" / "sources.list",
            "Dir::Etc::SourceParts": apt / "etc" / "sources.list.d", "Dir::Etc::Parts": apt / "etc" / "apt.conf.d",
            "Dir::Etc::Preferences": apt / "etc" / "preferences", "Dir::Etc::PreferencesParts": apt / "etc" / "preferences.d",
            "APT::Install-Recommends": "false"}
    lines = [f'{k} "{v}";' for k, v in conf.items()] + ['APT::Architectures { "arm64"; };']
    (apt / "apt.conf").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "APT_CONFIG": str(apt / "apt.conf"), "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update"], ["install", "--download-only", "-y", *GUEST_PACKAGES]):
        done = subprocess.run(["apt-get", "-q", *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
            raise EmulationUnavailable(f"apt-get {args[0]} for Debian's arm64 Python failed ({tail}); a mirror may be set with EDGEZOO_DEBIAN_MIRROR")
    return sorted((apt / "cache" / "archives").glob("*.deb"))


def _fetch_wheels(dest: Path, versions: dict[str, str]) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--dest", str(dest)]
    for tag in PLATFORM_TAGS:
        cmd += ["--platform", tag]
    cmd += [f"{name}=={v}" for name, v in versions.items()]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [l for l in done.stderr.splitlines() if "ERROR" in l] or done.stderr.strip().splitlines()[-1:]
        raise EmulationUnavailable(f"pip could not fetch the aarch64 wheels of {', '.join(f'{n} {v}' for n, v in versions.items())} "
                                   f"({' '.join(errors)[:300]})")
    return sorted(dest.glob("*.whl"))
