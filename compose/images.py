"""Build TuiTalk's container images on a machine that cannot pull from any image registry.

::

    python -m compose.images            # build what is missing or out of date (cheap if none)
    python -m compose.images --force    # rebuild all four images (Docker's layer cache helps)
    python -m compose.images --from-scratch   # drop our images and the root fs tarball first
    python -m compose.images --status   # say which images are up to date; build nothing

How (DESIGN.md §6, "no registry access"):

1. ``debootstrap --variant=minbase`` a Debian 12 (bookworm) root file system from the
   host's own Debian mirror (read from ``/etc/apt/sources.list*`` at run time), make it
   container-ready (no daemon starts during builds, no docs, apt without recommends), and
   cache it as ``var/docker/rootfs-bookworm.tar``;
2. ``docker import`` that tarball as ``tuitalk/base:bookworm``;
3. ``docker build --network host`` the images from the ``Dockerfile.*`` beside this file,
   in parallel: ``tuitalk/app`` (the backend: python3 + a venv with the tuitalk wheel),
   ``tuitalk/redis`` (redis-server, the cluster bootstrap), ``tuitalk/postgres`` and
   ``tuitalk/nginx`` (with the browser client's files). apt inside the builds uses the same
   mirror through the host's network.

Up to date means: the image carries the label ``org.tuitalk.inputs`` with the hash of
everything that went into it (its Dockerfile, the files copied in, for the app image the
package sources and the pinned dependency versions, and the root fs recipe). Nothing is
built, and no engine work is done beyond one ``docker image inspect`` per image, when all
four match.

Build contexts are staged under ``var/docker/context/<image>/`` (``Dockerfile`` and a
``root/`` tree copied to ``/`` in one layer: with the ``vfs`` storage driver every layer is
a full copy of the file system, so each image has as few layers as it can). Logs go to
``var/docker/build-<image>.log``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from compose import render

__all__ = [
    "BASE_TAG", "IMAGES", "BuildReport", "Image", "ImageBuildError", "debian_mirror",
    "ensure_images", "image_inputs_hash",
]

REPO: Final = Path(__file__).resolve().parent.parent
COMPOSE: Final = REPO / "compose"
VAR: Final = REPO / "var" / "docker"
SUITE: Final = "bookworm"
ROOTFS_TAR: Final = VAR / f"rootfs-{SUITE}.tar"
BASE_TAG: Final = f"tuitalk/base:{SUITE}"
LABEL: Final = "org.tuitalk.inputs"
IMAGE_LABEL: Final = "org.tuitalk.image"
#: Bump whenever _configure_rootfs or the debootstrap call changes: a new recipe makes a new
#: tarball, a new base image, and so new images on top of it.
ROOTFS_RECIPE: Final = f"{SUITE}-minbase-v1"
WEB: Final = REPO / "clients" / "web"
#: bookworm's python3 (3.11.2): the app image's interpreter, for dependency markers.
IMAGE_PYTHON: Final = "3.11.2"
#: Paths that debootstrap leaves but no container needs (~125 MB of 206 MB).
_SLIM_PATHS: Final = (
    "var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man", "usr/share/info",
    "usr/share/locale", "usr/share/lintian", "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/config.dat-old", "var/log/bootstrap.log",
)


class ImageBuildError(RuntimeError):
    """A step of the build failed; the message names the step and the log to read."""


@dataclass
class BuildReport:
    """What :func:`ensure_images` did, with wall-clock seconds per step."""

    built: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return (f"built: {', '.join(self.built) or 'nothing'}; up to date: "
                f"{', '.join(self.up_to_date) or 'none'}; {steps}")


def _log(msg: str) -> None:
    """Progress, on stderr (a build takes minutes)."""
    sys.stderr.write(f"[images] {msg}\n")
    sys.stderr.flush()


def _run(argv: list[str], log_path: Path, what: str, **kwargs: object) -> None:
    """Run a command with its output appended to ``log_path``; raise ImageBuildError."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False,
                              **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}); {log_path}:\n{tail}")


def _docker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The classic builder: BuildKit needs the buildx plugin, which this machine lacks, and
    # the classic builder does all these Dockerfiles need (--network host, labels).
    env["DOCKER_BUILDKIT"] = "0"
    return env


# -- the root file system -----------------------------------------------------------------


def _apt_source_files() -> list[Path]:
    d = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list")]
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    return [f for f in files if f.is_file()]


def _deb_entries(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``(uri, suites)`` of every enabled ``deb`` entry of one apt sources file."""
    text = path.read_text(errors="replace")
    if path.suffix == ".sources":  # deb822: stanzas separated by blank lines
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and \
                    fields.get("enabled", "yes").lower() != "no":
                for uri in fields.get("uris", "").split():
                    yield uri, fields.get("suites", "").split()
        return
    for raw in text.splitlines():  # one-line format: deb [options] uri suite components
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):
            rest = rest.partition("]")[2]
        words = rest.split()
        if len(words) >= 2:
            yield words[0], [words[1]]


def debian_mirror() -> str:
    """The Debian mirror this host's apt uses for the main archive (not -security or
    -updates), read from its sources at run time. Raises ImageBuildError if none."""
    fallback = None
    for path in _apt_source_files():
        for uri, suites in _deb_entries(path):
            if SUITE in suites:
                return uri
            if fallback is None and any("-" not in s for s in suites):
                fallback = uri
    if fallback is None:
        raise ImageBuildError("no Debian mirror found in /etc/apt/sources.list*")
    return fallback


def _host_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip().strip('"')
    return ""


def _configure_rootfs(root: Path) -> None:
    """Make a debootstrapped tree a lean, build-safe container base."""
    # Containers run with host networking: a package's postinst must never start its
    # daemon (nginx on :80, redis on :6379) on the host's ports during a build.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# No service starts inside image builds.\nexit 101\n")
    policy.chmod(0o755)
    # Later apt-get installs stay as lean as this tree.
    (root / "etc/apt/apt.conf.d/90tuitalk").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
        'Acquire::Languages "none";\nAcquire::GzipIndexes "true";\n'
        + _host_valid_until()
    )
    (root / "etc/dpkg/dpkg.cfg.d/90tuitalk-nodoc").write_text(
        "# Documentation and translations are never read in a container.\n"
        "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n"
        "path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\n"
        "path-exclude=/usr/share/locale/*\npath-exclude=/usr/share/lintian/*\n"
    )
    # Use the same apt sources as the host (main, updates, security) when it runs the same
    # release, so images get security updates; keep debootstrap's one line otherwise.
    if _host_codename() == SUITE:
        copied = [src for src in _apt_source_files() if _copy_source(src, root)]
        if copied and Path("/etc/apt/sources.list") not in copied:
            (root / "etc/apt/sources.list").unlink(missing_ok=True)
    for rel in _SLIM_PATHS:
        target = root / rel
        if target.is_dir() and not target.is_symlink():
            keep_copyright = rel == "usr/share/doc"
            for child in target.iterdir():
                if keep_copyright and (child / "copyright").exists():
                    for extra in child.iterdir():
                        if extra.name != "copyright":
                            _remove(extra)
                    continue
                _remove(child)
        elif target.exists():
            target.unlink()


def _copy_source(src: Path, root: Path) -> bool:
    """Copy one host apt sources file into ``root`` if every keyring it names exists
    there (a third-party repository's key does not, and apt would refuse the file)."""
    text = src.read_text()
    keys = [line.partition(":")[2].strip() for line in text.splitlines()
            if line.lower().startswith("signed-by:")]  # deb822
    keys += re.findall(r"signed-by=([^\s\]]+)", text)  # one-line format
    if not all((root / k.lstrip("/")).is_file() for k in keys):
        return False
    dest = root / src.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return True


def _host_valid_until() -> str:
    """Carry the host's ``Acquire::Check-Valid-Until`` into the image: a mirror that serves
    a snapshot has Release files past their Valid-Until date, and the host's apt (which
    works against that mirror) then says "false"."""
    out = subprocess.run(["apt-config", "shell", "V", "Acquire::Check-Valid-Until"],
                         capture_output=True, text=True, check=False).stdout
    if "false" in out.lower():
        return 'Acquire::Check-Valid-Until "false";\n'
    return ""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _unmount_below(path: Path) -> None:
    """Unmount anything mounted inside ``path`` (debootstrap mounts /proc and /sys in the
    target and may leave them after a failure; deleting through them would be a disaster)."""
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mnt in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False)


def build_rootfs(tar_path: Path = ROOTFS_TAR) -> float:
    """debootstrap + configure + tar; returns seconds taken. Raises ImageBuildError."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap not found (apt-get install debootstrap)")
    started = time.monotonic()
    work = VAR / "rootfs.tmp"
    log = VAR / "build-rootfs.log"
    log.unlink(missing_ok=True)
    if work.exists():
        _unmount_below(work)
        shutil.rmtree(work)
    debs = VAR / "debs"  # debootstrap's download cache: a rebuild downloads nothing
    debs.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    _log(f"debootstrap {SUITE} (minbase) into {work}")
    try:
        _run(["debootstrap", "--variant=minbase", "--components=main",
              f"--cache-dir={debs}", SUITE, str(work), mirror], log, "debootstrap")
        _configure_rootfs(work)
        tmp_tar = tar_path.with_suffix(".tar.tmp")
        _run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(tmp_tar), "."], log,
             "tar of the root fs")
        tmp_tar.replace(tar_path)
        tar_path.with_suffix(".recipe").write_text(ROOTFS_RECIPE + "\n")
    finally:
        if work.exists():
            _unmount_below(work)
            shutil.rmtree(work)
    return time.monotonic() - started


def _label_of(tag: str) -> str | None:
    """The image's inputs label, or None when there is no such image."""
    proc = subprocess.run(
        ["docker", "image", "inspect", "-f", f'{{{{ index .Config.Labels "{LABEL}" }}}}', tag],
        capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _recipe_hash() -> str:
    return hashlib.sha256(ROOTFS_RECIPE.encode()).hexdigest()[:16]


def ensure_base(report: BuildReport) -> None:
    """``tuitalk/base:bookworm`` from the cached tarball (debootstrapped if missing)."""
    want = _recipe_hash()
    if _label_of(BASE_TAG) == want:
        return
    recipe_file = ROOTFS_TAR.with_suffix(".recipe")
    if not ROOTFS_TAR.exists() or not recipe_file.exists() or \
            recipe_file.read_text().strip() != ROOTFS_RECIPE:
        report.seconds["debootstrap"] = build_rootfs()
    started = time.monotonic()
    _log(f"docker import {ROOTFS_TAR.name} as {BASE_TAG}")
    _run(["docker", "import",
          "--change", f"LABEL {LABEL}={want} {IMAGE_LABEL}=base",
          "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "--change", "ENV LANG=C.UTF-8",
          "--change", 'CMD ["/bin/bash"]',
          str(ROOTFS_TAR), BASE_TAG], VAR / "build-rootfs.log", "docker import",
         env=_docker_env())
    report.seconds["import"] = time.monotonic() - started


# -- the images ---------------------------------------------------------------------------


def _tree(src: Path, dest: str, skip: Callable[[Path], bool] = lambda _: False
          ) -> dict[str, Path]:
    """Every regular file below ``src`` (symlinks and __pycache__ left out) -> dest path."""
    out = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_symlink() or not path.is_file() or "__pycache__" in rel.parts or skip(rel):
            continue
        out[f"{dest}/{rel.as_posix()}"] = path
    return out


def _app_sources() -> dict[str, Path]:
    """What goes into the tuitalk wheel: the project metadata and both packages that
    pyproject's package discovery finds (the server image only imports ``tuitalk``)."""
    files = {"pyproject.toml": REPO / "pyproject.toml", "README.md": REPO / "README.md"}
    files.update(_tree(REPO / "tuitalk", "tuitalk"))
    files.update(_tree(REPO / "clients" / "tui" / "tuitalk_cli", "clients/tui/tuitalk_cli"))
    return files


def _pinned_versions() -> str:
    """``name==version`` of tuitalk's runtime dependencies (their whole closure) and pip, as
    installed in the running (developer) environment: the image gets the versions the
    tests ran with, and installing an unrelated tool in the venv changes nothing here."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(d) for d in project["dependencies"]] + [Requirement("pip")]
    pins: dict[str, str] = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # needed only by the image's Python: pip resolves it (see below)
        pins[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in (req.extras or {""})]
            envs += [{**_image_markers(), "extra": e} for e in (req.extras or {""})]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def _image_markers() -> dict[str, str]:
    return {"python_version": IMAGE_PYTHON.rsplit(".", 1)[0],
            "python_full_version": IMAGE_PYTHON, "implementation_version": IMAGE_PYTHON}


def _web_files() -> dict[str, Path]:
    static = WEB / "static"
    pyodide = WEB / "node_modules" / "pyodide"
    if not (pyodide / "pyodide.asm.wasm").exists():
        raise ImageBuildError("clients/web/node_modules/pyodide is missing: run "
                              "`npm ci` in clients/web (./run setup does)")
    # The page's wheels and start-up snapshot, rebuilt only when a source changed (as
    # ./run setup does).
    subprocess.run([sys.executable, str(WEB / "build_wheel.py")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, str(WEB / "build_snapshot.py")], check=True,
                   stdout=subprocess.DEVNULL)
    files = _tree(static, "srv/tuitalk/static")  # static/pyodide is a symlink: left out
    files.update(_tree(pyodide, "srv/tuitalk/pyodide",
                       skip=lambda rel: rel.suffix in (".map", ".ts")))
    return files


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, the files copied into its ``root/`` tree, and (app only)
    the wheels built from the package sources."""

    name: str
    files: Callable[[], dict[str, Path]]
    wheels: bool = False

    @property
    def tag(self) -> str:
        return f"tuitalk/{self.name}:latest"

    @property
    def dockerfile(self) -> Path:
        return COMPOSE / f"Dockerfile.{self.name}"


IMAGES: Final = (
    Image("app", dict, wheels=True),
    Image("redis", lambda: {
        "etc/tuitalk/redis.conf": render.REDIS_CONF,
        "usr/local/bin/redis-bootstrap.sh": COMPOSE / "redis-bootstrap.sh"}),
    Image("postgres", lambda: {
        "usr/local/bin/postgres-entrypoint.sh": COMPOSE / "postgres-entrypoint.sh"}),
    Image("nginx", lambda: {
        "etc/tuitalk/nginx.conf": render.NGINX_CONF,
        "etc/tuitalk/nginx-entrypoint.sh": COMPOSE / "nginx-entrypoint.sh",
        **_web_files()}),
)


def image_inputs_hash(image: Image, files: dict[str, Path]) -> str:
    """Hash of everything that decides the image's content."""
    h = hashlib.sha256()
    h.update(f"recipe {_recipe_hash()}\n".encode())
    h.update(image.dockerfile.read_bytes())
    sources = dict(files)
    if image.wheels:
        sources.update({f"src/{k}": v for k, v in _app_sources().items()})
        h.update(_pinned_versions().encode())
    for dest in sorted(sources):
        path = sources[dest]
        h.update(f"\0{dest}\0{path.stat().st_mode & 0o111:o}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _stage(image: Image, files: dict[str, Path], ctx: Path, log: Path) -> None:
    if ctx.exists():
        shutil.rmtree(ctx)
    root = ctx / "root"
    root.mkdir(parents=True)
    shutil.copyfile(image.dockerfile, ctx / "Dockerfile")
    for dest, src in files.items():
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    if image.wheels:
        _stage_wheels(ctx, root / "tmp" / "wheels", log)


def _stage_wheels(ctx: Path, wheels: Path, log: Path) -> None:
    """The tuitalk wheel, its dependencies and pip itself, pinned to the developer venv's
    versions. The wheel is built from a copy of the sources, so the build writes nothing
    into the work tree (no build/ or egg-info there)."""
    src = ctx / "src"
    for dest, path in _app_sources().items():
        (src / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / dest)
    pins = _pinned_versions()
    (ctx / "constraints.txt").write_text(pins)
    pip_pin = next((line for line in pins.splitlines() if line.startswith("pip==")), "pip")
    wheels.mkdir(parents=True)
    # Wheels come from pip's cache when the venv was installed from it; pip fetches only
    # what it lacks, through its ordinary index configuration.
    wanted = [str(src), pip_pin]
    for _ in range(5):
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
              "--wheel-dir", str(wheels), "--constraint", str(ctx / "constraints.txt"),
              *wanted], log, "pip wheel")
        wanted = _missing_for_image_python(wheels)
        if not wanted:
            break
    else:
        raise ImageBuildError(f"wheel set for the image does not close: {wanted}")
    shutil.rmtree(src)


def _missing_for_image_python(wheels: Path) -> list[str]:
    """Dependencies the image's Python needs that pip, resolving for the host's Python,
    left out (redis needs async-timeout before 3.11.3: the venv runs 3.11.7, bookworm's
    python3 is 3.11.2). pip's ``--python-version`` does not apply to markers, hence this."""
    from email.parser import HeaderParser

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env = {**_image_markers(), "extra": ""}
    have = {canonicalize_name(w.name.split("-", 1)[0]) for w in wheels.glob("*.whl")}
    missing = set()
    for whl in wheels.glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            meta_name = next(n for n in zf.namelist()
                             if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            meta = HeaderParser().parsestr(zf.read(meta_name).decode())
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            # Extras were resolved on the host already ("extra" is empty here), so only
            # interpreter-dependent base requirements can be missing.
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if canonicalize_name(req.name) not in have:
                req.marker = None
                missing.add(str(req))
    return sorted(missing)


def _build(image: Image, inputs: str, files: dict[str, Path]) -> float:
    started = time.monotonic()
    ctx = VAR / "context" / image.name
    log = VAR / f"build-{image.name}.log"
    log.unlink(missing_ok=True)
    _stage(image, files, ctx, log)
    _run(["docker", "build", "--network", "host", "--force-rm", "--tag", image.tag,
          "--label", f"{LABEL}={inputs}", "--label", f"{IMAGE_LABEL}={image.name}",
          str(ctx)], log, f"docker build {image.tag}", env=_docker_env())
    shutil.rmtree(ctx)
    return time.monotonic() - started


def image_status() -> dict[str, tuple[str, str | None]]:
    """Per image: ``(wanted inputs hash, the built image's hash or None)``."""
    render.write()
    out = {}
    for image in IMAGES:
        out[image.name] = (image_inputs_hash(image, image.files()), _label_of(image.tag))
    return out


def ensure_images(force: bool = False) -> BuildReport:
    """Build every image that is missing or out of date (all of them with ``force``).

    Needs a running engine (:func:`compose.dockerd.start`), ``debootstrap`` when the root
    fs tarball is not cached yet, and the host's network for apt and pip. Raises
    :class:`ImageBuildError` naming the failed step and its log.
    """
    report = BuildReport()
    started = time.monotonic()
    VAR.mkdir(parents=True, exist_ok=True)
    render.write()  # the configs copied into the images follow the launcher
    todo: list[tuple[Image, str, dict[str, Path]]] = []
    for image in IMAGES:
        files = image.files()
        inputs = image_inputs_hash(image, files)
        if not force and _label_of(image.tag) == inputs:
            report.up_to_date.append(image.name)
        else:
            todo.append((image, inputs, files))
    if todo:
        ensure_base(report)
        _log(f"building {', '.join(i.tag for i, _, _ in todo)} in parallel")
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
            futures = {pool.submit(_build, *job): job[0] for job in todo}
            errors = []
            for fut in concurrent.futures.as_completed(futures):
                image = futures[fut]
                try:
                    report.seconds[image.name] = fut.result()
                    report.built.append(image.name)
                    _log(f"{image.tag} built in {report.seconds[image.name]:.1f}s")
                except ImageBuildError as exc:
                    errors.append(str(exc))
        # Earlier builds of our images, now untagged, would keep their (vfs: full-copy)
        # layers forever; only images carrying our label are pruned.
        subprocess.run(["docker", "image", "prune", "--force", "--filter",
                        f"label={IMAGE_LABEL}"], capture_output=True, check=False)
        if errors:
            raise ImageBuildError("\n\n".join(errors))
    report.seconds["total"] = time.monotonic() - started
    return report


def remove_all() -> None:
    """Remove our images and the cached root fs tarball (``--from-scratch``)."""
    # Children first: the engine refuses to delete an image that others are built on.
    for tag in [*(i.tag for i in IMAGES), BASE_TAG]:
        subprocess.run(["docker", "image", "rm", "--force", tag], capture_output=True,
                       check=False)
    subprocess.run(["docker", "image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}"],
                   capture_output=True, check=False)
    ROOTFS_TAR.unlink(missing_ok=True)
    ROOTFS_TAR.with_suffix(".recipe").unlink(missing_ok=True)


def _say(text: str) -> None:
    """Command-line output (the library functions above print nothing)."""
    sys.stdout.write(f"{text}\n")


def main(argv: list[str] | None = None) -> int:
    from compose import dockerd

    ap = argparse.ArgumentParser(prog="python -m compose.images", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild every image")
    ap.add_argument("--from-scratch", action="store_true",
                    help="remove our images and the root fs tarball first "
                         "(add --clear-downloads to also drop cached .deb files)")
    ap.add_argument("--clear-downloads", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--status", action="store_true", help="report only; build nothing")
    args = ap.parse_args(argv)
    try:
        dockerd.start()
        if args.status:
            for name, (want, have) in image_status().items():
                state = "up to date" if want == have else f"stale ({have} != {want})"
                _say(f"tuitalk/{name}:latest {state}")
            return 0
        if args.from_scratch:
            remove_all()
            if args.clear_downloads:
                shutil.rmtree(VAR / "debs", ignore_errors=True)
        report = ensure_images(force=args.force or args.from_scratch)
    except (ImageBuildError, dockerd.DockerdError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    _say(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
