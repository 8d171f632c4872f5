"""Downloads: resume after a cut, checksum failure, nothing re-downloaded after success, safe extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from httpserver import ArchiveServer

from wsss.core.io import BadInputError
from wsss.data.download import download, extract


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


def test_download_resumes_after_cut_connection(archive, tmp_path):
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv:
        srv.cut_after[path.name] = 300_000
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
        assert out.read_bytes() == path.read_bytes()
        assert srv.requests[0] == (path.name, None)
        assert srv.requests[1] == (path.name, "bytes=300000-")  # resumed, not restarted
        assert not out.with_name(out.name + ".part").exists()


def test_download_restarts_when_server_ignores_range(archive, tmp_path):
    path, md5 = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}, honour_range=False) as srv:
        srv.cut_after[path.name] = 100_000
        download(f"{srv.url}/{path.name}", out, md5, backoff=0)
    assert out.read_bytes() == path.read_bytes()


def test_wrong_checksum_stops_and_leaves_nothing(archive, tmp_path):
    path, _ = archive
    out = tmp_path / "dl" / path.name
    with ArchiveServer({path.name: path}) as srv:
        with pytest.raises(BadInputError, match="does not match the expected 0{32}"):
            download(f"{srv.url}/{path.name}", out, "0" * 32, backoff=0)
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
