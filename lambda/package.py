"""Build the transform Lambda zips (python3.12; arm64 and x86_64) from requirements.lock, within AWS's limits.

    python lambda/package.py                      # both zips into dist/lambda/, sizes printed
    python lambda/package.py --arch x86_64 --runtime-venv   # one zip + the local runtime venv (tests)

A zip holds the handler, the part of `feedline` it imports and the runtime dependencies at their locked
versions for the target platform. boto3 is not bundled: the Lambda runtime provides it. An input hash
next to each zip skips rebuilding an unchanged one; downloads are cached in dist/lambda/cache.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAMBDA = REPO / "lambda"
DIST = REPO / "dist" / "lambda"
CACHE = DIST / "cache"
LOCK = REPO / "requirements.lock"
RUNTIME_REQUIREMENTS = LAMBDA / "requirements-runtime.txt"
PYTHON_VERSION = "3.12"
ARCHES = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}
DEPENDENCIES = ("polars", "pydantic", "pyyaml")
"""What contract, storage and transform import at module level; their own dependencies come along."""
FEEDLINE_PARTS = (
    "__init__.py",
    "errors.py",
    "contract.py",
    "settings.py",
    "storage",
    "transform",
    "quality/__init__.py",
    "quality/spec.py",
)
PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
"""Imported lazily by the S3 storage and provided by the Lambda python runtime."""
ZIPPED_LIMIT = 50 * 1024**2
UNZIPPED_LIMIT = 250 * 1024**2
EPOCH = (1980, 1, 1, 0, 0, 0)
TASK_ROOT = "/var/task"
"""Where Lambda unpacks the zip: the source paths compiled into the bytecode, as tracebacks show them."""


class PackageError(Exception):
    """The package cannot be built as asked; the message says what to fix."""


@dataclass(frozen=True)
class Built:
    arch: str
    path: Path
    zipped: int
    unzipped: int
    rebuilt: bool

    def report(self) -> str:
        mb = 1024**2
        sizes = f"{self.zipped / mb:.1f} MB zipped, {self.unzipped / mb:.1f} MB unzipped"
        line = f"{self.path.relative_to(REPO)}: {sizes}"
        if self.zipped > ZIPPED_LIMIT:
            line += " (over the 50 MB direct-upload limit: deploy it through S3, as infra/terraform does)"
        return line + ("" if self.rebuilt else " [unchanged]")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def find_uv() -> str:
    """uv as `make install` provides it: on PATH, else .tools/bin/uv."""
    found = shutil.which("uv") or (str(REPO / ".tools/bin/uv") if (REPO / ".tools/bin/uv").exists() else None)
    if found is None:
        raise PackageError("uv not found; run `make install` first (it installs uv into .tools/)")
    return found


def find_python(version: str = PYTHON_VERSION) -> str:
    """A working python<version>: FEEDLINE_LAMBDA_PYTHON, PATH, then pyenv's versions."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [os.environ.get("FEEDLINE_LAMBDA_PYTHON"), shutil.which(f"python{version}")]
    candidates += [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)]
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    check = f"import sys; sys.exit(sys.version_info[:2] != {tuple(map(int, version.split('.')))})"
    for candidate in filter(None, candidates):
        if (
            Path(candidate).exists()
            and subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0
        ):
            return candidate
    raise PackageError(
        f"no working python{version} found; `pyenv install {version}` or set FEEDLINE_LAMBDA_PYTHON to one"
    )


def locked_pins(lock: Path = LOCK) -> dict[str, str]:
    """Normalised name → version of every `name==version` line of requirements.lock."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[normalise(match[1])] = match[2]
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def digest(*parts: Path | str) -> str:
    """A hash of files (path and content, folders recursively, caches skipped) and strings."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            h.update(part.encode())
            continue
        files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
        for file in files:
            if "__pycache__" not in file.parts:
                h.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def install_dependencies(uv: str, arch: str, target: Path) -> None:
    """The locked runtime dependencies as built for the Lambda platform, wheels only."""
    say(f"{arch}: installing {', '.join(DEPENDENCIES)} at their locked versions (manylinux wheels)")
    cmd = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--target",
        str(target),
        "--cache-dir",
        str(CACHE),
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        ARCHES[arch],
        "--only-binary",
        ":all:",
        "--no-compile",
        "-c",
        str(LOCK),
        *DEPENDENCIES,
    ]
    subprocess.run(cmd, check=True)
    pins = locked_pins()
    for meta in target.glob("*.dist-info/METADATA"):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", meta.read_text(errors="replace"), re.M))
        name, version = normalise(fields["Name"]), fields["Version"]
        if name in PROVIDED:
            raise PackageError(
                f"{name} was pulled in, but the Lambda runtime provides it; find which dependency"
            )
        if pins.get(name) != version:
            raise PackageError(
                f"{name}=={version} is not what requirements.lock pins ({pins.get(name)}); re-lock"
            )


def add_feedline(root: Path) -> None:
    """The modules the handler imports, and the handler; fail if they import something not bundled."""
    package = root / "feedline"
    for part in FEEDLINE_PARTS:
        source = REPO / "src" / "feedline" / part
        if source.is_dir():
            shutil.copytree(source, package / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (package / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, package / part)
    shutil.copy2(LAMBDA / "handler.py", root / "handler.py")
    check_imports(root)


def check_imports(root: Path) -> None:
    """Every module-level import of the bundled feedline code resolves inside the zip or the stdlib."""
    bundled = {p.name.split(".")[0] for p in root.iterdir()} | set(sys.stdlib_module_names)
    problems = []
    for file in sorted(root.glob("feedline/**/*.py")):
        for node in ast.parse(file.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top, module = name.split(".")[0], root / Path(*name.split("."))
                if top not in bundled and top != "__future__":
                    problems.append(f"{file.relative_to(root)} imports {name}, which the zip does not bundle")
                elif top == "feedline" and not (module.is_dir() or module.with_suffix(".py").exists()):
                    problems.append(f"{file.relative_to(root)} imports {name}; add it to FEEDLINE_PARTS")
    if problems:
        raise PackageError("\n".join(problems))


def precompile(root: Path, python: str | None) -> None:
    """Bytecode the runtime can use as is (/var/task is read-only): imports at a cold start took 0.4 s with
    it, 1.3-1.7 s without. Hash-based and compiled for /var/task paths, so builds stay reproducible."""
    if python is None:
        say("no python3.12 here: the zip carries no bytecode (cold starts compile it)")
        return
    options = ["-q", "-j", "0", "--invalidation-mode", "unchecked-hash", "-d", TASK_ROOT]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # set constants are marshalled in hash order
    subprocess.run([python, "-m", "compileall", *options, str(root)], check=True, env=env)


def prune(root: Path) -> None:
    for path in [root / "bin", root / ".lock", *root.glob("**/tests"), *root.glob("**/*.pyi")]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_zip(root: Path, dest: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps and permissions."""
    tmp = dest.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()):
            file = root / name
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.create_system = 3
            info.external_attr = (0o100755 if os.access(file, os.X_OK) else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with file.open("rb") as src, zf.open(info, "w") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    tmp.replace(dest)


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def build(arch: str, uv: str, python: str | None, *, force: bool = False) -> Built:
    """One arch's zip, rebuilt only when an input changed; raises PackageError over the unzipped limit."""
    dest = DIST / f"feedline-transform-{arch}.zip"
    stamp = dest.with_name(dest.name + ".inputs")
    sources = [REPO / "src" / "feedline" / p for p in FEEDLINE_PARTS]
    want = digest(arch, str(python is not None), Path(__file__), LAMBDA / "handler.py", LOCK, *sources)
    rebuilt = force or not dest.exists() or not stamp.exists() or stamp.read_text() != want
    if rebuilt:
        staging = DIST / "build" / arch
        shutil.rmtree(staging, ignore_errors=True)
        install_dependencies(uv, arch, staging)
        add_feedline(staging)
        prune(staging)
        precompile(staging, python)
        say(f"{arch}: zipping")
        write_zip(staging, dest)
        shutil.rmtree(staging)
        stamp.write_text(want)
    built = Built(arch, dest, dest.stat().st_size, unzipped_size(dest), rebuilt)
    if built.unzipped > UNZIPPED_LIMIT:
        raise PackageError(f"{built.report()}: over Lambda's 250 MB unzipped limit; slim the dependencies")
    return built


def runtime_venv(uv: str, python: str, *, force: bool = False) -> Path:
    """A python3.12 venv with the Lambda runtime's own parts (awslambdaric, boto3), to run a zip locally."""
    venv = DIST / "runtime-venv"
    stamp = venv / ".inputs"
    want = digest(python, RUNTIME_REQUIREMENTS, LOCK)
    if force or not stamp.exists() or stamp.read_text() != want:
        say(f"building {venv.relative_to(REPO)} ({python}, {RUNTIME_REQUIREMENTS.name})")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                "--cache-dir",
                str(CACHE),
                "--only-binary",
                ":all:",
                "-r",
                str(RUNTIME_REQUIREMENTS),
                "-c",
                str(LOCK),
            ],
            check=True,
        )
        stamp.write_text(want)
    return venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=sorted(ARCHES), help="default: both")
    parser.add_argument("--runtime-venv", action="store_true", help="also build dist/lambda/runtime-venv")
    parser.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    args = parser.parse_args(argv)
    try:
        uv = find_uv()
        try:
            python: str | None = find_python()
        except PackageError as exc:
            if args.runtime_venv:
                raise
            say(str(exc))
            python = None
        DIST.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(
            max_workers=2
        ) as pool:  # zlib releases the GIL: the zips compress in parallel
            jobs = [
                pool.submit(build, arch, uv, python, force=args.force) for arch in args.arch or sorted(ARCHES)
            ]
            if args.runtime_venv and python is not None:
                print(runtime_venv(uv, python, force=args.force).relative_to(REPO), flush=True)
            for job in jobs:
                print(job.result().report(), flush=True)
    except PackageError as exc:
        print(f"lambda-package: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"lambda-package: {' '.join(map(str, exc.cmd[:3]))}… failed with exit code {exc.returncode}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
