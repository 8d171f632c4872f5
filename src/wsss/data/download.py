"""Checksummed, resumable, atomic downloads and safe archive extraction (tar and zip).

A download goes to `<out>.part`; after a cut connection it resumes with an HTTP Range request
(falling back to a full restart if the server ignores ranges). Only a file whose MD5 matches is
renamed onto `<out>`, so a killed or corrupt download never looks finished.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from wsss.core.io import BadInputError, atomic_dir

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _fetch_once(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`; return once the server has sent all of it (or says that
    `part` already holds all of it), raise on anything else."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range past the end: we already have everything
            return
        raise
    with response:
        if have and response.status != 206:
            log.info("server ignored the Range request; restarting %s from byte 0", url)
            have = 0
        total = response.headers.get("Content-Length")
        expected = None if total is None else have + int(total)
        with open(part, "ab" if have else "wb") as fh:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                fh.write(block)
        size = part.stat().st_size
        if expected is not None and size < expected:
            raise ConnectionError(f"connection cut at {size} of {expected} bytes")


def _retryable(err: BaseException) -> bool:
    """Network trouble that a later attempt can get past (resuming with Range).

    Retried: connection reset/refused/aborted, timeouts, a cut body (IncompleteRead, our own
    ConnectionError for a short file), the server hanging up, HTTP 5xx. Not retried: HTTP 4xx (a
    wrong URL stays wrong), DNS/URL errors, local OSErrors (disk full, permissions), and a checksum
    mismatch (a different file behind the URL: downloading it again gives the same wrong bytes).
    """
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500
    if isinstance(err, urllib.error.URLError):
        return isinstance(err.reason, (ConnectionError, TimeoutError, socket.timeout))
    return isinstance(err, (ConnectionError, TimeoutError, socket.timeout, http.client.IncompleteRead,
                            http.client.RemoteDisconnected, http.client.BadStatusLine))


def download(url: str, out: str | os.PathLike, md5: str | None, retries: int = 5, timeout: float = 60.0,
             backoff: float = 1.0) -> Path:
    """Download `url` to `out`, verified by `md5`, resuming after cuts. Nothing to do if `out` is valid.

    Network errors (see `_retryable`) are retried `retries` times, waiting backoff * 2**k seconds;
    a checksum mismatch fails at once and deletes the partial file. `md5=None` trusts the file on
    first use (for sources that publish no checksum, e.g. DUTS): an existing `out` is kept, a new
    one is logged with its MD5 so that it can be pinned in the config.
    """
    out = Path(out)
    if out.exists():
        if md5 is None:
            log.info("%s already present (no checksum configured: trusted); nothing downloaded", out)
            return out
        if md5sum(out) == md5:
            log.info("%s already present with the right checksum; nothing downloaded", out)
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    for attempt in range(1, retries + 2):
        try:
            _fetch_once(url, part, timeout)
            break
        except Exception as err:  # classified below: only network trouble is retried
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise BadInputError(f"{url}: HTTP {err.code}; check the URL config key for {out.name}") from err
            if not _retryable(err):
                raise
            if attempt > retries:
                raise RuntimeError(f"{url}: download failed after {retries} retries ({err}); "
                                   f"rerun to resume from {part}") from err
            wait = backoff * 2 ** (attempt - 1)
            log.warning("download of %s interrupted (%s); resuming in %.3gs (attempt %d of %d)", url, err, wait,
                        attempt, retries)
            time.sleep(wait)
    got = md5sum(part)
    if md5 is None:
        os.replace(part, out)
        log.warning("%s: no checksum configured; the downloaded file has MD5 %s — set its md5 config key "
                    "(e.g. saliency.duts_md5) to it to verify future downloads", out, got)
        return out
    if got != md5:
        part.unlink()
        raise BadInputError(f"{out}: MD5 {got} does not match the expected {md5} (from {url}); the partial file "
                            "was deleted. Check the URL and md5 config keys, then rerun.")
    os.replace(part, out)
    log.info("downloaded %s (%d bytes, md5 ok)", out, out.stat().st_size)
    return out


def extract(archive: str | os.PathLike, member: str, out_dir: str | os.PathLike,
            names: list[str] | None = None) -> Path:
    """Extract the top-level folder `member` of a tar or zip archive onto `out_dir`, atomically and safely.

    `names` (paths relative to `member`) extracts only those files, e.g. the two instance files of
    COCO's annotation zip without its captions and keypoints; a name the archive lacks is an error.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, member, names, tmp)
        else:
            with tarfile.open(archive) as tar:
                chosen = [m for m in tar.getmembers() if m.name.split("/")[0] == member]
                chosen = _chosen(archive, member, names, chosen, lambda m: m.name)
                try:
                    tar.extractall(tmp, members=chosen, filter="data")
                except tarfile.FilterError as err:
                    # e.g. a member named `top/../../file`, a link pointing out, an absolute path
                    raise BadInputError(f"{archive}: unsafe member {err.tarinfo.name!r} ({err}); the archive is "
                                        "damaged or not the expected one: delete it and rerun the download "
                                        "rule") from err
        inner = tmp / member
        for child in inner.iterdir():
            shutil.move(str(child), tmp / child.name)
        inner.rmdir()
    return out_dir


def verify_extraction(archive: str | os.PathLike, member: str, folder: str | os.PathLike,
                      names: list[str] | None = None) -> dict:
    """Check an `extract` of `member/` against its archive before the archive may go: every file it
    chose is in `folder` at its size and, for a zip, its CRC-32 (read back from the disk). Returns the
    manifest (archive, member, files, bytes); a mismatch is a BadInputError naming the file."""
    import zlib

    archive, folder = Path(archive), Path(folder)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if i.filename.split("/")[0] == member]
            entries = [(i.filename, i.file_size, i.CRC) for i in _chosen(archive, member, names, infos,
                                                                        lambda i: i.filename) if not i.is_dir()]
    else:
        with tarfile.open(archive) as tar:
            chosen = _chosen(archive, member, names, [m for m in tar.getmembers() if m.name.split("/")[0] == member],
                             lambda m: m.name)
            entries = [(m.name, m.size, None) for m in chosen if m.isfile()]
    for name, size, crc in entries:
        path = folder / name.split("/", 1)[1]
        if not path.is_file() or path.stat().st_size != size:
            raise BadInputError(f"{path}: missing or not the size of {name} in {archive}; delete {folder} and "
                                "rerun its extraction")
        if crc is not None:
            with open(path, "rb") as fh:
                got = 0
                while block := fh.read(1 << 20):
                    got = zlib.crc32(block, got)
            if got != crc:
                raise BadInputError(f"{path}: CRC-32 differs from {name} in {archive}; delete {folder} and rerun "
                                    "its extraction")
    return {"archive": archive.name, "member": member, "files": len(entries), "bytes": sum(e[1] for e in entries)}


def _chosen(archive: Path, member: str, names: list[str] | None, entries: list, name_of) -> list:
    """The entries under `member/` to extract (all, or those `names` lists), or a BadInputError."""
    if not entries:
        raise BadInputError(f"{archive}: has no top-level folder '{member}/'; is it the right archive? "
                            "Delete it and rerun the download rule.")
    if names is None:
        return entries
    wanted = {f"{member}/{n}" for n in names}
    chosen = [e for e in entries if name_of(e).rstrip("/") in wanted]
    missing = sorted(wanted - {name_of(e).rstrip("/") for e in chosen})
    if missing:
        raise BadInputError(f"{archive}: has no {', '.join(missing)}; is it the right archive? "
                            "Delete it and rerun the download rule.")
    return chosen


def extract_all(archive: str | os.PathLike, dest: str | os.PathLike,
                fix: str = "delete it and rerun the rule that downloads it") -> None:
    """Everything of a zip or tar archive into `dest`, with the same refusals as `extract`; `fix`
    ends the error messages."""
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_zip_entries(archive, zf.infolist())
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as err:
                raise BadInputError(f"{archive}: unsafe member {err.tarinfo.name!r} ({err}); the archive is damaged "
                                    f"or not the expected one: {fix}") from err
    else:
        raise BadInputError(f"{archive}: neither a zip nor a tar archive; {fix}")


def _check_zip_entries(archive: Path, infos: list) -> None:
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if (info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]
                or stat.S_ISLNK(info.external_attr >> 16)):
            raise BadInputError(f"{archive}: entry '{info.filename}' would be written outside the target folder "
                                "or is a link; refusing the archive. Delete it and rerun the download rule.")


def _extract_zip(archive: Path, member: str, names: list[str] | None, dest: Path) -> None:
    """Extract `member/` (or its `names`) of a zip into `dest`, refusing entries that could land elsewhere.

    zipfile itself drops `..` and leading slashes silently, which would write a file the archive
    placed outside its folder somewhere inside ours; an archive that tries that is not the one we
    expect, so it is refused as a whole, as are symbolic links (the tar path's "data" filter does
    the same for tar archives).
    """
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_zip_entries(archive, infos)
        chosen = _chosen(archive, member, names, [i for i in infos if i.filename.split("/")[0] == member],
                         lambda i: i.filename)
        for info in chosen:
            zf.extract(info, dest)
