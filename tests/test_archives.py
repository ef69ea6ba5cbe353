import hashlib
import http.server
import io
import socket
import stat
import tarfile
import threading
import zipfile

import pytest

from pipeline.sources.archives import content_root, fetch, unpack
from pipeline.core.errors import DataError

FILES = {"a.txt": b"A" * 10, "sub/b.txt": b"B" * 20}


def make_zip(path, entries):
    """entries: name -> bytes, or (ZipInfo, bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(data[0] if isinstance(data, tuple) else name, data[1] if isinstance(data, tuple) else data)
    return path


def make_tar(path, entries, mode="w:gz"):
    """entries: name -> bytes, or a TarInfo (link, fifo, ...) without data."""
    with tarfile.open(path, mode) as tf:
        for name, data in entries.items():
            if isinstance(data, tarfile.TarInfo):
                tf.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_line_error(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_good_archive_unpacks_to_expected_tree(tmp_path, kind):
    archive = tmp_path / f"data.{kind}"
    if kind == "zip":
        make_zip(archive, FILES)
    else:
        make_tar(archive, {"./" + k: v for k, v in FILES.items()}, "w:gz" if kind == "tar.gz" else "w")
    out = tmp_path / "out" / "target"
    assert unpack(archive, out) == out
    assert tree(out) == FILES  # two top-level entries: nothing stripped
    assert [p.name for p in out.parent.iterdir()] == ["target"]  # no temporary folder left


def test_single_wrapper_folder_is_stripped(tmp_path):
    archive = make_zip(tmp_path / "AFLW2000-3D.zip", {
        "AFLW2000/image00000.jpg": b"jpg",
        "AFLW2000/image00000.mat": b"mat",
        "__MACOSX/AFLW2000/._image00000.jpg": b"junk",
    })
    out = unpack(archive, tmp_path / "aflw")
    assert tree(out) == {"image00000.jpg": b"jpg", "image00000.mat": b"mat"}
    # the wrapper's name may repeat inside it
    archive = make_tar(tmp_path / "hpdb.tgz", {"hpdb/hpdb/x.txt": b"x", "hpdb/01/y.txt": b"y"})
    assert tree(unpack(archive, tmp_path / "biwi")) == {"hpdb/x.txt": b"x", "01/y.txt": b"y"}


def test_content_root(tmp_path):
    (tmp_path / "w" / "AFLW2000").mkdir(parents=True)
    (tmp_path / "w" / ".DS_Store").write_bytes(b"")
    assert content_root(tmp_path / "w") == tmp_path / "w" / "AFLW2000"
    (tmp_path / "w" / "README").write_text("x")
    assert content_root(tmp_path / "w") == tmp_path / "w"


def test_unpacked_folder_is_left_alone(tmp_path):
    (tmp_path / "given" / "AFLW2000").mkdir(parents=True)
    assert unpack(tmp_path / "given", tmp_path / "target") == tmp_path / "given" / "AFLW2000"
    assert not (tmp_path / "target").exists()


def test_plain_file_is_copied_and_target_replaced_on_success(tmp_path):
    npz = tmp_path / "BIWI_train.npz"
    npz.write_bytes(b"PK-not-unpacked")
    out = tmp_path / "biwi"
    (out / "old").mkdir(parents=True)
    unpack(npz, out)
    assert tree(out) == {"BIWI_train.npz": b"PK-not-unpacked"}


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_truncated_archive_is_refused_and_target_untouched(tmp_path, kind):
    archive = tmp_path / f"data.{kind}"
    files = {"a.bin": bytes(range(256)) * 400, "b.bin": b"b" * 1000}
    (make_zip if kind == "zip" else make_tar)(archive, files)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="not a readable archive.*delete it and download again") as excinfo:
        unpack(archive, tmp_path / "out" / "target")
    assert str(archive) in one_line_error(excinfo)
    assert list((tmp_path / "out").iterdir()) == []
    # an existing target survives a failed unpack
    (tmp_path / "out" / "target").mkdir()
    (tmp_path / "out" / "target" / "keep.txt").write_text("old")
    with pytest.raises(DataError):
        unpack(archive, tmp_path / "out" / "target")
    assert tree(tmp_path / "out" / "target") == {"keep.txt": b"old"}


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
@pytest.mark.parametrize("evil", ["../evil.txt", "sub/../../evil.txt", "ABSOLUTE"])
def test_member_escaping_target_is_refused(tmp_path, kind, evil):
    if evil == "ABSOLUTE":
        evil = str(tmp_path / "abs_evil.txt")
    archive = tmp_path / "in" / f"data.{kind}"
    archive.parent.mkdir()
    entries = {"ok.txt": b"ok", evil: b"evil"}
    (make_zip if kind == "zip" else make_tar)(archive, entries)
    with pytest.raises(DataError, match="refused") as excinfo:
        unpack(archive, tmp_path / "out" / "target")
    assert repr(evil) in one_line_error(excinfo)
    assert list((tmp_path / "out").iterdir()) == []  # nothing unpacked, target absent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # nothing written outside


@pytest.mark.parametrize("kind, problem", [
    (tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hard link"), (tarfile.FIFOTYPE, "fifo"),
])
def test_tar_links_and_special_members_are_refused(tmp_path, kind, problem):
    info = tarfile.TarInfo("link")
    info.type, info.linkname = kind, "a.txt"  # even a harmless-looking target is refused
    archive = make_tar(tmp_path / "data.tar.gz", {"a.txt": b"a", "link": info})
    with pytest.raises(DataError, match=f"member 'link' refused .*{problem}"):
        unpack(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_zip_symlink_entry_is_refused(tmp_path):
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "data.zip", {"a.txt": b"a", "link": (info, "/etc/passwd")})
    with pytest.raises(DataError, match="member 'link' refused .*symlink"):
        unpack(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_local_file_checksum(tmp_path, capsys):
    path = tmp_path / "data.zip"
    path.write_bytes(b"archive bytes")
    digest = hashlib.sha256(b"archive bytes").hexdigest()
    assert fetch(str(path), tmp_path / "downloads") == path
    assert digest in capsys.readouterr().out  # printed so the user can pin it
    assert fetch(str(path), tmp_path / "downloads", sha256=digest.upper()) == path
    with pytest.raises(DataError) as excinfo:
        fetch(str(path), tmp_path / "downloads", sha256="0" * 64)
    msg = one_line_error(excinfo)
    assert str(path) in msg and digest in msg and "0" * 64 in msg and "params.yaml" in msg


def test_local_folder_is_returned_and_missing_path_refused(tmp_path):
    assert fetch(str(tmp_path), tmp_path / "downloads") == tmp_path
    with pytest.raises(DataError, match="no such file or folder"):
        fetch(str(tmp_path / "missing.zip"), tmp_path / "downloads")


DATA = bytes(range(256)) * 1200  # 307,200 bytes
DIGEST = hashlib.sha256(DATA).hexdigest()


class FileServer:
    """Serves DATA at any path; supports `Range: bytes=N-`; can drop the connection after K bytes once."""

    def __init__(self):
        self.ranges, self.drop_after, self.honor_range = [], None, True
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                state.ranges.append(rng)
                start = 0
                if rng and state.honor_range:
                    start = int(rng.removeprefix("bytes=").removesuffix("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
                else:
                    self.send_response(200)
                body = DATA[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if state.drop_after is not None:
                    body, state.drop_after = body[: state.drop_after], None
                self.wfile.write(body)  # HTTP/1.0: the connection closes after the handler

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/data.bin"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_interrupted_download_resumes_with_range(tmp_path, server):
    downloads, k = tmp_path / "downloads", 100_000
    server.drop_after = k
    with pytest.raises(DataError, match="resume") as excinfo:
        fetch(server.url, downloads, sha256=DIGEST, progress=False)
    assert server.url in one_line_error(excinfo)
    assert (downloads / "data.bin.part").stat().st_size == k
    assert not (downloads / "data.bin").exists()

    path = fetch(server.url, downloads, sha256=DIGEST)  # with a progress bar
    assert server.ranges == [None, f"bytes={k}-"]
    assert path == downloads / "data.bin" and path.read_bytes() == DATA
    assert not (downloads / "data.bin.part").exists()

    fetch(server.url, downloads, sha256=DIGEST, progress=False)  # complete: not downloaded again
    assert len(server.ranges) == 2


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "data.bin.part").write_bytes(b"stale bytes from another file")
    server.honor_range = False
    path = fetch(server.url, downloads, sha256=DIGEST, progress=False)
    assert server.ranges == ["bytes=29-"]
    assert path.read_bytes() == DATA


def test_unreachable_url_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    downloads = tmp_path / "downloads"
    with pytest.raises(DataError) as excinfo:
        fetch(f"http://127.0.0.1:{port}/x.zip", downloads, progress=False)
    msg = one_line_error(excinfo)
    assert f"http://127.0.0.1:{port}/x.zip" in msg and "downloads/x.zip" in msg and "local path" in msg
    assert not (downloads / "x.zip").exists()
