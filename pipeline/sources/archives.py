"""Get a dataset archive from a URL or a local path and unpack it safely.

    folder = unpack(fetch(url_or_path, downloads, sha256), RAW / "aflw2000")  # where the data is
"""
from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from pipeline.core.atomic import atomic_dir
from pipeline.core.errors import ConfigError, DataError

TIMEOUT = 60  # seconds without data before a download counts as failed
CHUNK = 1 << 20
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
JUNK = {"__MACOSX", ".DS_Store"}  # ignored (and dropped) when looking for a wrapper folder
# Errors of a truncated or corrupt archive (bz2 reports bad data as an OSError without errno).
CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def fetch(location: str, downloads: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """Return a local path for `location` (http(s) URL, archive file or unpacked folder).

    A URL is downloaded to downloads/<name> via downloads/<name>.part, which a later call resumes.
    A file is checked against `sha256`, or its digest is printed so it can be pinned; a folder is
    returned as is, unchecked.
    """
    url = urllib.parse.urlsplit(location)
    if url.scheme in ("http", "https"):
        name = posixpath.basename(urllib.parse.unquote(url.path))
        if not name:
            raise ConfigError(f"{location}: URL has no file name; give a URL ending in the archive name, or a local path")
        path = Path(downloads) / name
        if not path.exists():
            _download(location, path, progress)
    elif "://" in location:
        raise ConfigError(f"{location}: unsupported URL scheme; give an http(s) URL or a local path")
    else:
        path = Path(location).expanduser()
        if path.is_dir():
            return path
        if not path.is_file():
            raise DataError(f"{path}: no such file or folder; fix the path in params.yaml or give the download URL")
    digest = sha256_file(path)
    if sha256 is None:
        print(f"{path}: sha256 {digest} (put it in params.yaml to verify this file from now on)")
    elif digest != sha256.strip().lower():
        raise DataError(
            f"{path}: sha256 is {digest}, expected {sha256.strip().lower()}; "
            "delete the file to download it again, or correct the checksum in params.yaml"
        )
    return path


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _download(url: str, dest: Path, progress: bool) -> None:
    """Download `url` to `dest` through `dest`.part, resuming it with an HTTP Range request."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    done, total = offset, None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            if offset and resp.status == 206 and not resp.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                part.unlink()  # not the range we asked for: start again
                return _download(url, dest, progress)
            if resp.status != 206:
                done = 0  # the server ignored Range and sends the whole file
            if resp.headers.get("Content-Length"):
                total = done + int(resp.headers["Content-Length"])
            with open(part, "ab" if done else "wb") as f, tqdm(
                total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress
            ) as bar:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # .part is already as long as the file (or longer)
            part.unlink()
            return _download(url, dest, progress)
        _fail(url, dest, str(exc), offset)
    except (OSError, HTTPException) as exc:  # URLError, refused, reset, timeout
        _fail(url, dest, str(getattr(exc, "reason", exc)), done)
    if total is not None and done != total:
        _fail(url, dest, f"connection closed after {done} of {total} bytes", done)
    os.replace(part, dest)


def _fail(url: str, dest: Path, reason: str, done: int):
    resume = f"run again to resume from {dest}.part ({done} bytes), or " if done else ""
    raise DataError(
        f"cannot download {url} ({_one_line(reason)}); {resume}put the archive at {dest} by hand "
        "or give a local path instead of the URL"
    )


def _one_line(text) -> str:
    return " ".join(str(text).split())


def unpack(archive: Path, target: Path) -> Path:
    """Unpack `archive` into `target` and return `target`; a non-archive file is copied into it,
    and a folder (already unpacked) is not touched: content_root(folder) is returned instead.

    Archives are .zip, .tar, .tar.gz/.tgz, .tar.bz2/.tbz2, .tar.xz/.txz (by file name; .npz is a
    plain file). Every member is checked before anything is extracted: absolute paths, paths
    leaving `target`, links, devices and fifos are refused. A single wrapper folder is stripped
    (see content_root). `target` is replaced only once everything is unpacked.
    """
    archive, target = Path(archive), Path(target)
    name = archive.name.lower()
    if archive.is_dir():
        return content_root(archive)
    if not archive.is_file():
        raise DataError(f"{archive}: no such file; run the download again or fix the path in params.yaml")
    with atomic_dir(target) as tmp:
        if not (name.endswith(".zip") or name.endswith(TAR_SUFFIXES)):
            try:
                os.link(archive, tmp / archive.name)
            except OSError:
                shutil.copy2(archive, tmp / archive.name)
            return target
        try:
            if name.endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        _check_member(archive, tmp, info.filename, info.external_attr >> 16, "zip")
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    for member in tf.getmembers():
                        _check_member(archive, tmp, member.name, member, "tar")
                    tf.extractall(tmp, filter="data")
        except tarfile.FilterError as exc:
            raise DataError(f"{archive}: unsafe member refused ({_one_line(exc)}); the archive is not the official one, download it again") from exc
        except (*CORRUPT, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, CORRUPT) and exc.errno is not None:
                raise  # a real I/O problem (disk full, permissions), not a bad archive
            raise DataError(f"{archive}: not a readable archive ({_one_line(exc)}); delete it and download again") from exc
        root = content_root(tmp)
        if root != tmp:
            for junk in [e for e in tmp.iterdir() if e.name in JUNK]:
                if junk.is_dir():
                    shutil.rmtree(junk)
                else:
                    junk.unlink()
            wrapper = root.rename(tmp / f".{root.name}.strip")  # free the name in case it repeats inside
            for entry in wrapper.iterdir():
                entry.rename(tmp / entry.name)
            wrapper.rmdir()
    return target


def _check_member(archive: Path, root: Path, name: str, kind, fmt: str) -> None:
    """Refuse (DataError) a member that is absolute, leaves `root`, or is not a file or folder.

    `kind` is the TarInfo (fmt "tar") or the st_mode from a zip entry's external attributes.
    """
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        problem = "absolute path"
    elif os.path.commonpath([root, os.path.normpath(os.path.join(root, name))]) != str(root):
        problem = "path leaves the target folder"
    elif fmt == "tar" and not (kind.isreg() or kind.isdir()):
        problem = "symlink" if kind.issym() else "hard link" if kind.islnk() else "device, fifo or special file"
    elif fmt == "zip" and stat.S_IFMT(kind) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: type not recorded
        problem = "symlink" if stat.S_ISLNK(kind) else "device, fifo or special file"
    else:
        return
    raise DataError(f"{archive}: member {name!r} refused ({problem}); the archive is not the official one, download it again")


def content_root(folder: Path) -> Path:
    """Where the content of an unpacked folder is: its only sub-folder if it holds nothing else
    (ignoring __MACOSX and .DS_Store), else `folder` itself. One level only.

    AFLW2000-3D.zip holds AFLW2000/..., so content_root(unpacked) is unpacked/AFLW2000.
    """
    folder = Path(folder)
    entries = [e for e in folder.iterdir() if e.name not in JUNK]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return folder
