"""Downloads: resume after a cut, checksum failure, nothing re-downloaded after success, safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import zipfile

import pytest
from httpserver import ArchiveServer

from wsss.core.io import BadInputError
from wsss.data.download import download, extract, extract_all, verify_extraction


def make_tar(path, members: dict[str, bytes | None], mode="w"):
    """A tar of `members` (name → bytes, or None for a directory), in this order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def archive(tmp_path):
    """The served archive, in its own folder (never where a download lands), and its MD5."""
    payload = bytes(range(256)) * 4000  # ~1 MB, several read chunks
    (tmp_path / "served").mkdir()
    path = make_tar(tmp_path / "served" / "VOCtrainval_11-May-2012.tar",
                    {"VOCdevkit/VOC2012/JPEGImages/a.jpg": payload, "VOCdevkit/VOC2012/ImageSets/x.txt": b"a\n"})
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_resumes_after_cut_connection(archive, tmp_path, caplog):
    import logging

    path, md5 = archive
    out = tmp_path / "dl" / "voc" / path.name  # folders made as needed
    size = path.stat().st_size
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.INFO, logger="wsss.data.download"):
        srv.cut_after[path.name] = 300_000
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
        assert out.read_bytes() == path.read_bytes()
        assert srv.requests[0] == (path.name, None)
        assert srv.requests[1] == (path.name, "bytes=300000-")  # resumed, not restarted
        assert not out.with_name(out.name + ".part").exists()
    assert caplog.messages == [
        f"download of {srv.url}/{path.name} interrupted (connection cut at 300000 of {size} bytes); resuming in 0s "
        "(attempt 1 of 5)", f"downloaded {out} ({size} bytes, md5 ok)"]


def test_a_body_of_undeclared_length_is_taken_whole(archive, tmp_path):
    path, md5 = archive
    with ArchiveServer({path.name: path}) as srv:
        srv.no_length.add(path.name)
        download(f"{srv.url}/{path.name}", tmp_path / "a.tar", md5, backoff=0)
    assert (tmp_path / "a.tar").read_bytes() == path.read_bytes()


def test_download_defaults_wait_1s_then_doubling_and_time_out_after_60s(tmp_path, monkeypatch):
    import wsss.data.download as dl

    waits, timeouts = [], []

    def refused(url, part, timeout):
        timeouts.append(timeout)
        raise ConnectionRefusedError

    monkeypatch.setattr(dl.time, "sleep", waits.append)
    monkeypatch.setattr(dl, "_fetch_once", refused)
    with pytest.raises(RuntimeError, match="after 2 retries"):
        download("http://127.0.0.1:9/a.tar", tmp_path / "a.tar", "0" * 32, retries=2)
    assert waits == [1.0, 2.0] and timeouts == [60.0] * 3


def test_download_restarts_when_server_ignores_range(archive, tmp_path, caplog):
    import logging

    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}, honour_range=False) as srv, \
            caplog.at_level(logging.INFO, logger="wsss.data.download"):
        srv.cut_after[path.name] = 100_000
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
    assert out.read_bytes() == path.read_bytes()
    assert caplog.messages.count(f"server ignored the Range request; restarting {srv.url}/{path.name} from "
                                 "byte 0") == 1


def test_a_resume_that_meets_a_server_error_retries_it(archive, tmp_path):
    """An HTTP error on a Range request is not 'complete' unless it is 416: the resume is retried."""
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    out.parent.mkdir()
    half = path.stat().st_size // 2
    out.with_name(out.name + ".part").write_bytes(path.read_bytes()[:half])
    with ArchiveServer({path.name: path}) as srv:
        srv.fail_next[path.name] = [503]
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
        assert srv.requests == [(path.name, f"bytes={half}-")] * 2
    assert out.read_bytes() == path.read_bytes()


def test_a_server_that_stalls_times_out(archive, tmp_path):
    path, md5 = archive
    with ArchiveServer({path.name: path}) as srv:
        srv.stall[path.name] = 3.0
        with pytest.raises(RuntimeError, match=r"download failed after 0 retries \(.*timed out"):
            download(f"{srv.url}/{path.name}", tmp_path / "a.tar", md5, retries=0, timeout=0.3)


def test_wrong_checksum_stops_and_leaves_nothing(archive, tmp_path):
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv:
        with pytest.raises(BadInputError) as err:
            download(f"{srv.url}/{path.name}", out, "0" * 32, backoff=0)
    assert str(err.value) == (f"{out}: MD5 {md5} does not match the expected {'0' * 32} (from {srv.url}/{path.name}); "
                              "the partial file was deleted. Check the URL and md5 config keys, then rerun.")
    # the whole file came (one request) and was then deleted: no archive, no .part
    assert srv.requests == [(path.name, None)]
    assert list((tmp_path / "dl").iterdir()) == []


def test_rerun_after_success_downloads_nothing(archive, tmp_path):
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv:
        download(f"{srv.url}/{path.name}", out, md5)
        n = len(srv.requests)
        download(f"{srv.url}/{path.name}", out, md5)
        assert len(srv.requests) == n


def test_missing_url_is_a_clear_error(archive, tmp_path):
    path, md5 = archive
    with ArchiveServer({}) as srv:
        with pytest.raises(BadInputError, match="HTTP 404; check the URL"):
            download(f"{srv.url}/nope.tar", tmp_path / "nope.tar", md5)


def test_extract_takes_the_top_folder(archive, tmp_path):
    path, _ = archive
    out = extract(path, "VOCdevkit", tmp_path / "root" / "VOCdevkit")
    assert (out / "VOC2012/ImageSets/x.txt").read_text() == "a\n"
    with pytest.raises(BadInputError, match="no top-level folder 'benchmark_RELEASE/'"):
        extract(path, "benchmark_RELEASE", tmp_path / "root" / "benchmark_RELEASE")
    assert not (tmp_path / "root" / "benchmark_RELEASE").exists()


def test_extract_refuses_path_traversal(tmp_path):
    """A member `VOCdevkit/../../evil.txt` climbs out of the extraction folder (the `VOCdevkit/`
    entry before it lets an extractor create the path). Extracted without the safety filter it
    lands two levels up; extract() must refuse it by name and write nothing, there or anywhere."""
    bad = make_tar(tmp_path / "served" / "bad.tar", {"VOCdevkit/": None, "VOCdevkit/../../evil.txt": b"x"})
    # What the payload does to a trusting extractor: it lands two levels above its folder.
    probe = tmp_path / "probe" / "extract_here"
    with tarfile.open(bad) as tar:
        tar.extractall(probe, filter="fully_trusted")
    assert (tmp_path / "probe" / "evil.txt").read_bytes() == b"x"
    # extract() unpacks into a temp folder beside out_dir, so there it would have landed in root/
    root = tmp_path / "root"
    with pytest.raises(BadInputError, match=r"bad\.tar: unsafe member 'VOCdevkit/\.\./\.\./evil\.txt' .*"
                                            r"outside the destination") as err:
        extract(bad, "VOCdevkit", root / "VOCdevkit")
    assert isinstance(err.value.__cause__, tarfile.OutsideDestinationError)
    assert not (root / "evil.txt").exists() and not root.parent.joinpath("evil.txt").exists()
    assert list(root.iterdir()) == []  # no target folder, no temp folder left
    assert sorted(p.name for p in tmp_path.rglob("evil.txt")) == ["evil.txt"]  # only the probe's


# ---- every extraction path against archives that would really escape (issue 32) -------------------
def _archive(path, kind, entries):
    """A tar or zip of entries (name, bytes) or (name, ("link", target)) for a symbolic link."""
    if kind == "tar":
        with tarfile.open(path, "w") as tar:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                if isinstance(data, tuple):
                    info.type, info.linkname = tarfile.SYMTYPE, data[1]
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    else:
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries:
                if isinstance(data, tuple):
                    info = zipfile.ZipInfo(name)
                    info.external_attr = 0o120777 << 16  # a symbolic link, its target as the content
                    zf.writestr(info, data[1])
                else:
                    zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _trusting_extract(archive, kind, dest):
    """What an extractor without checks does: tarfile without a filter, or a zip written entry by entry."""
    if kind == "tar":
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="fully_trusted")
        return
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = dest / info.filename  # an absolute name replaces dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(info.external_attr >> 16):
                os.symlink(zf.read(info).decode(), target)
            else:
                target.write_bytes(zf.read(info))


@pytest.mark.parametrize("function", ["extract", "extract_all"])
@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("payload", ["dotdot", "absolute", "symlink"])
def test_no_extraction_path_writes_outside_its_folder(tmp_path, function, kind, payload):
    """Each payload is first shown to escape a trusting extractor run at the same depth (the
    extraction folder is root/<name>, as extract's temporary folder beside its target), then fed to
    extract or extract_all: refused (tar's absolute names, which tarfile's data filter makes relative,
    stay inside instead), and nothing lands outside root/."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    escape = {"dotdot": [("top/../../../evil.txt", b"x")],  # root/<name>/top/../../.. is tmp_path
              "absolute": [(str(outside / "evil.txt"), b"x")],
              "symlink": [("top/link", ("link", "../../../outside")), ("top/link/evil.txt", b"x")]}[payload]
    archive = _archive(tmp_path / f"a.{kind}", kind, [("top/ok.txt", b"ok")] + escape)
    landed = {"dotdot": tmp_path / "evil.txt"}.get(payload, outside / "evil.txt")

    _trusting_extract(archive, kind, root / "probe")
    assert landed.read_bytes() == b"x"  # the payload really escapes
    landed.unlink()
    shutil.rmtree(root / "probe")

    run = (lambda: extract(archive, "top", root / "dest")) if function == "extract" else (
        lambda: extract_all(archive, root / "dest"))
    if kind == "tar" and payload == "absolute":
        run()
        inside = root / "dest" / str(outside / "evil.txt").lstrip("/")
        assert inside.exists() is (function == "extract_all")  # extract takes only top/: the name is left out
        assert (root / "dest" / ("ok.txt" if function == "extract" else "top/ok.txt")).read_bytes() == b"ok"
    else:
        with pytest.raises(BadInputError) as err:
            run()
        assert str(err.value).startswith(f"{archive}: ")
        assert str(err.value).endswith({
            ("tar", "extract"): "the archive is damaged or not the expected one: delete it and rerun the download rule",
            ("tar", "extract_all"): "the archive is damaged or not the expected one: delete it and rerun the rule "
                                    "that downloads it"}.get(
            (kind, function), "would be written outside the target folder or is a link; refusing the archive. "
                              "Delete it and rerun the download rule."))
        if function == "extract":  # atomic: neither the target nor its temporary folder is left
            assert list(root.iterdir()) == []
    assert not landed.exists() and not landed.is_symlink()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.iterdir()) == [f"a.{kind}", "outside", "root"]
    assert list(outside.iterdir()) == []
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert links == []


@pytest.mark.parametrize("name", ["top\\..\\..\\evil.txt", "\\evil.txt", "C:/evil.txt", "top/../evil.txt"])
def test_zip_names_that_escape_on_another_system_are_refused(tmp_path, name):
    """Backslash separators, a leading backslash and a drive letter escape an extractor on Windows:
    refused by both zip paths, with the entry named, before anything is written."""
    archive = _archive(tmp_path / "a.zip", "zip", [("top/ok.txt", b"ok"), (name, b"x")])
    message = (f"{archive}: entry '{name}' would be written outside the target folder or is a link; refusing "
               "the archive. Delete it and rerun the download rule.")
    for run in (lambda: extract(archive, "top", tmp_path / "root" / "dest"),
                lambda: extract_all(archive, tmp_path / "root" / "dest")):
        with pytest.raises(BadInputError) as err:
            run()
        assert str(err.value) == message
        assert not (tmp_path / "root" / "dest").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_takes_the_named_files_and_names_what_is_missing(tmp_path, kind):
    # "INDEX": of a member's name only a folder's trailing "/" is stripped, not other trailing characters
    archive = _archive(tmp_path / f"a.{kind}", kind, [("top/a.json", b"a"), ("top/b.json", b"b"), ("top/INDEX", b"c")])
    out = extract(archive, "top", tmp_path / "out", names=["a.json", "INDEX"])
    assert sorted(p.name for p in out.iterdir()) == ["INDEX", "a.json"] and (out / "INDEX").read_bytes() == b"c"
    if kind == "zip":  # a folder entry ends in "/": named without it
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr(zipfile.ZipInfo("top/d/"), b"")
        out = extract(archive, "top", tmp_path / "with_dir", names=["d", "b.json"])
        assert sorted(p.name for p in out.iterdir()) == ["b.json", "d"] and (out / "d").is_dir()
    with pytest.raises(BadInputError) as err:
        extract(archive, "top", tmp_path / "other", names=["a.json", "x.json", "y.json"])
    assert str(err.value) == (f"{archive}: has no top/x.json, top/y.json; is it the right archive? Delete it and "
                              "rerun the download rule.")
    with pytest.raises(BadInputError) as err:
        extract(archive, "VOCdevkit", tmp_path / "other")
    assert str(err.value) == (f"{archive}: has no top-level folder 'VOCdevkit/'; is it the right archive? Delete "
                              "it and rerun the download rule.")
    assert not (tmp_path / "other").exists()


def test_extract_all_names_the_fix_its_caller_gives(tmp_path):
    archive = _archive(tmp_path / "a.tar", "tar", [("top/ok.txt", b"ok"), ("top/../../evil.txt", b"x")])
    with pytest.raises(BadInputError) as err:
        extract_all(archive, tmp_path / "root" / "dest", fix="rerun download_x")
    assert str(err.value).startswith(f"{archive}: unsafe member 'top/../../evil.txt' (")
    assert str(err.value).endswith("the archive is damaged or not the expected one: rerun download_x")
    (tmp_path / "plain.bin").write_bytes(b"neither")
    with pytest.raises(BadInputError) as err:
        extract_all(tmp_path / "plain.bin", tmp_path / "dest2", fix="rerun download_x")
    assert str(err.value) == f"{tmp_path / 'plain.bin'}: neither a zip nor a tar archive; rerun download_x"
    good = _archive(tmp_path / "good.zip", "zip", [("top/ok.txt", b"ok"), ("b.txt", b"b")])
    extract_all(good, tmp_path / "dest3")
    assert (tmp_path / "dest3/top/ok.txt").read_bytes() == b"ok" and (tmp_path / "dest3/b.txt").read_bytes() == b"b"


# ---- download(): what is retried, how long it waits, what it trusts (issue 32, `make mutation`) ------
def test_retryable_is_network_trouble_only():
    import http.client
    import socket
    import urllib.error

    from wsss.data.download import _retryable

    retried = [urllib.error.HTTPError("u", 500, "x", None, None), urllib.error.HTTPError("u", 503, "x", None, None),
               urllib.error.URLError(ConnectionRefusedError()), urllib.error.URLError(TimeoutError()),
               urllib.error.URLError(socket.timeout()), ConnectionResetError(), TimeoutError(), socket.timeout(),
               http.client.IncompleteRead(b""), http.client.RemoteDisconnected(), http.client.BadStatusLine("x"),
               ConnectionError("connection cut at 1 of 2 bytes")]
    kept = [urllib.error.HTTPError("u", 404, "x", None, None), urllib.error.HTTPError("u", 499, "x", None, None),
            urllib.error.URLError("Name or service not known"), OSError(28, "No space left on device"),
            ValueError("x")]
    assert [_retryable(e) for e in retried] == [True] * len(retried)
    assert [_retryable(e) for e in kept] == [False] * len(kept)


def test_retries_wait_twice_as_long_each_time_then_report(tmp_path, monkeypatch):
    import socket

    import wsss.data.download as dl

    waits = []
    monkeypatch.setattr(dl.time, "sleep", waits.append)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused, every time
    url = f"http://127.0.0.1:{port}/a.tar"
    with pytest.raises(RuntimeError) as err:
        download(url, tmp_path / "a.tar", "0" * 32, retries=3, backoff=0.5, timeout=5)
    assert waits == [0.5, 1.0, 2.0]
    assert str(err.value).startswith(f"{url}: download failed after 3 retries (")
    assert str(err.value).endswith(f"); rerun to resume from {tmp_path / 'a.tar.part'}")
    waits.clear()
    with pytest.raises(RuntimeError, match="after 5 retries"):
        download(url, tmp_path / "a.tar", "0" * 32, backoff=0.25)
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0]  # 5 retries by default


def test_server_errors_are_retried_and_logged(archive, tmp_path, caplog, monkeypatch):
    import logging

    import wsss.data.download as dl

    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.INFO, logger="wsss.data.download"):
        srv.fail_next[path.name] = [500, 503]  # 500: the first code that is the server's trouble
        download(f"{srv.url}/{path.name}", out, md5, retries=2, backoff=1.5)
        assert [r for _, r in srv.requests] == [None, None, None]
    assert out.read_bytes() == path.read_bytes()
    assert caplog.messages == [
        f"download of {srv.url}/{path.name} interrupted (HTTP Error 500: Internal Server Error); resuming in 1.5s "
        "(attempt 1 of 2)",
        f"download of {srv.url}/{path.name} interrupted (HTTP Error 503: Service Unavailable); resuming in 3s "
        "(attempt 2 of 2)", f"downloaded {out} ({path.stat().st_size} bytes, md5 ok)"]
    caplog.clear()
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.INFO, logger="wsss.data.download"):
        download(f"{srv.url}/{path.name}", out, md5)
        assert srv.requests == []
    assert caplog.messages == [f"{out} already present with the right checksum; nothing downloaded"]


def test_a_complete_partial_file_is_finished_without_a_body(archive, tmp_path):
    """A .part that already holds the whole file: the range request past its end gets HTTP 416, which
    means done; the checksum decides."""
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    out.parent.mkdir()
    out.with_name(out.name + ".part").write_bytes(path.read_bytes())
    with ArchiveServer({path.name: path}) as srv:
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
        assert srv.requests == [(path.name, f"bytes={path.stat().st_size}-")]
    assert out.read_bytes() == path.read_bytes() and not out.with_name(out.name + ".part").exists()


def test_a_wrong_file_in_place_is_downloaded_again(archive, tmp_path):
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    out.parent.mkdir()
    out.write_bytes(b"an older, different file")
    with ArchiveServer({path.name: path}) as srv:
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
        assert srv.requests == [(path.name, None)]
    assert out.read_bytes() == path.read_bytes()


def test_no_checksum_trusts_the_first_download_and_logs_its_md5(archive, tmp_path, caplog):
    import logging

    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.INFO, logger="wsss.data.download"):
        download(f"{srv.url}/{path.name}", out, None, backoff=0)
        assert out.read_bytes() == path.read_bytes() and not out.with_name(out.name + ".part").exists()
        assert caplog.messages == [
            f"{out}: no checksum configured; the downloaded file has MD5 {md5} — set its md5 config key "
            "(e.g. saliency.duts_md5) to it to verify future downloads"]
        out.write_bytes(b"kept as it is")
        download(f"{srv.url}/{path.name}", out, None, backoff=0)
        assert len(srv.requests) == 1 and out.read_bytes() == b"kept as it is"
    assert caplog.messages[1:] == [f"{out} already present (no checksum configured: trusted); nothing downloaded"]


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_verify_extraction_checks_every_chosen_file_against_the_archive(tmp_path, kind):
    """The check that lets an archive be deleted: each file at its size and, for a zip, its CRC-32."""
    big = bytes(range(256)) * 6000  # 1.5 MB: read back in more than one block
    archive = _archive(tmp_path / f"a.{kind}", kind, [("top/a.json", b"aaaa"), ("top/sub/big.bin", big),
                                                       ("top/c.txt", b"c"), ("other/x", b"x")])
    if kind == "zip":  # a folder entry is checked through its files, not as a file
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr(zipfile.ZipInfo("top/sub/"), b"")
    else:
        with tarfile.open(archive, "a") as tar:
            info = tarfile.TarInfo("top/sub")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    out = extract(archive, "top", tmp_path / "out")
    assert verify_extraction(archive, "top", out) == {"archive": f"a.{kind}", "member": "top", "files": 3,
                                                      "bytes": 4 + len(big) + 1}
    some = extract(archive, "top", tmp_path / "some", names=["a.json"])
    assert verify_extraction(archive, "top", some, names=["a.json"]) == {"archive": f"a.{kind}", "member": "top",
                                                                          "files": 1, "bytes": 4}
    with pytest.raises(BadInputError, match=f"^{archive}: has no top/absent; "):
        verify_extraction(archive, "top", some, names=["a.json", "absent"])
    for damage in (lambda p: p.unlink(), lambda p: p.write_bytes(b"cc"), lambda p: p.write_bytes(b"")):  # gone, resized
        damage(out / "c.txt")
        with pytest.raises(BadInputError) as err:
            verify_extraction(archive, "top", out)
        assert str(err.value) == (f"{out / 'c.txt'}: missing or not the size of top/c.txt in {archive}; "
                                  f"delete {out} and rerun its extraction")
    (out / "c.txt").write_bytes(b"c")
    changed = bytearray(big)
    changed[-1] ^= 1  # same size, other bytes, in the last block
    (out / "sub" / "big.bin").write_bytes(bytes(changed))
    if kind == "tar":  # a tar records no checksum: the size is all there is to check
        assert verify_extraction(archive, "top", out)["files"] == 3
    else:
        with pytest.raises(BadInputError) as err:
            verify_extraction(archive, "top", out)
        assert str(err.value) == (f"{out / 'sub' / 'big.bin'}: CRC-32 differs from top/sub/big.bin in {archive}; "
                                  f"delete {out} and rerun its extraction")
