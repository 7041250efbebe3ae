"""Runs inside the sandbox with a build environment's python: build a wheel from an sdist, or read a project's
metadata, through its own PEP 517 backend. It imports nothing of the service; the host reads what it writes."""

import os
import shutil
import sys
import tarfile
import zipfile


def unpack(archive, destination):
    """The sdist's top folder. Only plain files and folders are unpacked, none outside `destination` (this
    Python may predate tarfile's extraction filters)."""
    root = os.path.realpath(destination)

    def target(name):
        path = os.path.realpath(os.path.join(root, name))
        if path != root and not path.startswith(root + os.sep):
            raise SystemExit(f"sdist member {name!r} would land outside the build folder")
        return path

    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                path = target(member.filename)
                if member.is_dir():
                    os.makedirs(path, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with bundle.open(member) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink)
    else:
        with tarfile.open(archive) as bundle:
            for member in bundle:
                path = target(member.name)
                if member.isdir():
                    os.makedirs(path, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with bundle.extractfile(member) as source, open(path, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    os.chmod(path, 0o755 if member.mode & 0o100 else 0o644)
    entries = [entry for entry in os.listdir(root) if not entry.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(root, entries[0])):
        return os.path.join(root, entries[0])
    return root


def main():
    mode, source, out_dir = sys.argv[1:4]
    from build import BuildBackendException

    try:
        build(mode, source, out_dir)
    except BuildBackendException as error:
        # The backend's own output (above) says why; this line only marks where it ends.
        print(f"{FAILED_MARKER} {error.exception.__class__.__name__}", flush=True)
        sys.exit(1)


FAILED_MARKER = "assessor-build: the build backend failed:"


def build(mode, source, out_dir):
    from build import ProjectBuilder  # from the build environment, read-only

    if mode == "wheel":
        scratch = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sdist")
        os.makedirs(scratch)
        project = unpack(source, scratch)
        builder = ProjectBuilder(project)
        built = builder.build("wheel", out_dir)
        print(f"built {os.path.basename(built)}")
    elif mode == "metadata":
        builder = ProjectBuilder(source)
        path = builder.metadata_path(os.path.join(os.environ.get("TMPDIR", "/tmp"), "metadata"))
        shutil.copyfile(os.path.join(path, "METADATA"), os.path.join(out_dir, "METADATA"))
        print("metadata written")
    else:
        raise SystemExit(f"unknown mode {mode!r}")


main()
