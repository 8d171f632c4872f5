"""Recovery wastes nothing: stale temp outputs are cleaned, only network errors are retried, and a
finished training is retrained (not "resumed") when forced."""

from __future__ import annotations

import hashlib
import inspect
import logging
import socket

import numpy as np
import pytest
import torch
from httpserver import ArchiveServer

import wsss.stages.train_segmentation as seg
from wsss.core.io import BadInputError, atomic_dir, atomic_path, write_image, write_label_png
from wsss.data import duts as duts_module
from wsss.data.download import download

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_dir_removes_stale_temp_of_the_same_output_only(tmp_path):
    out = tmp_path / "maps"
    stale = tmp_path / ".maps.k2j4x9_a.tmp"  # what a SIGKILLed atomic_dir(out) leaves
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "x.png").write_bytes(b"half")
    other = tmp_path / ".maps2.abcdefgh.tmp"  # another output's (possibly live) temp folder
    other.mkdir()
    with atomic_dir(out) as tmp:
        assert not stale.exists()
        (tmp / "a.txt").write_text("ok")
    assert (out / "a.txt").read_text() == "ok" and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".maps2.abcdefgh.tmp", "maps"]


def test_failing_block_leaves_no_temp_and_no_output(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "a").write_text("x")
            raise RuntimeError("job failed")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "model.pt") as tmp:
            tmp.write_bytes(b"x")
            raise RuntimeError("job failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_removes_stale_temp_file_of_the_same_output_only(tmp_path):
    stale = tmp_path / ".model.ab12cd34.tmp.pt"
    stale.write_bytes(b"half a model")
    keep = [tmp_path / ".model.ab12cd34.tmp.csv",  # same stem, other output (model.csv)
            tmp_path / ".model.b.ab12cd34.tmp.pt"]  # output model.b.pt
    for k in keep:
        k.write_bytes(b"x")
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    assert not stale.exists() and all(k.exists() for k in keep)
    assert (tmp_path / "model.pt").read_bytes() == b"weights"


# ----------------------------------------------------------------------------- downloads
@pytest.fixture
def blob(tmp_path):
    path = tmp_path / "src" / "a.tar"
    path.parent.mkdir()
    path.write_bytes(np.random.default_rng(0).bytes(300_000))
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_http_5xx_is_retried_then_succeeds(blob, tmp_path, caplog):
    path, md5 = blob
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.WARNING):
        srv.fail_next[path.name] = [503, 502]
        download(f"{srv.url}/{path.name}", tmp_path / "a.tar", md5, backoff=0)
        assert len(srv.requests) == 3
    assert (tmp_path / "a.tar").read_bytes() == path.read_bytes()
    assert "HTTP Error 503" in caplog.text


def test_http_4xx_and_checksum_mismatch_are_not_retried(blob, tmp_path):
    path, md5 = blob
    with ArchiveServer({path.name: path}) as srv:
        srv.fail_next[path.name] = [403]
        with pytest.raises(BadInputError, match="HTTP 403"):
            download(f"{srv.url}/{path.name}", tmp_path / "a.tar", md5, backoff=0)
        assert len(srv.requests) == 1
        srv.requests.clear()
        with pytest.raises(BadInputError, match="does not match the expected"):
            download(f"{srv.url}/{path.name}", tmp_path / "a.tar", "0" * 32, backoff=0)
        assert len(srv.requests) == 1  # one fetch, no retry
    assert list(tmp_path.glob("a.tar*")) == []  # no archive, no partial file


def test_refused_connection_is_retried_then_reported(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    with pytest.raises(RuntimeError, match="download failed after 2 retries"):
        download(f"http://127.0.0.1:{port}/a.tar", tmp_path / "a.tar", "0" * 32, retries=2, backoff=0)


def test_duts_uses_the_one_downloader_trust_on_first_use(blob, tmp_path, caplog):
    assert "_fetch_once" not in inspect.getsource(duts_module)
    path, md5 = blob
    with ArchiveServer({path.name: path}) as srv, caplog.at_level(logging.WARNING):
        srv.cut_after[path.name] = 1000  # the public downloader resumes it
        out = duts_module.download_duts(f"{srv.url}/{path.name}", tmp_path / "DUTS-TR.zip", None)
        assert out.read_bytes() == path.read_bytes()
        assert f"MD5 {md5}" in caplog.text
        n = len(srv.requests)
        duts_module.download_duts(f"{srv.url}/{path.name}", out, None)  # present: trusted, no request
        assert len(srv.requests) == n
        with pytest.raises(BadInputError, match="does not match"):
            duts_module.download_duts(f"{srv.url}/{path.name}", out, "0" * 32)


# ----------------------------------------------------------------------------- forced retraining
def _seg_data(root, n=4, size=32):
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(n)]
    rows = ["id,a,b"]
    for i, name in enumerate(ids):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(4, size - 16, size=2)
        mask[y:y + 12, x:x + 12] = 1 + i % 2
        write_image(root / "img" / f"{name}.jpg", np.where(mask[..., None] > 0, 200, 60).astype(np.uint8)
                    .repeat(3, -1))
        write_label_png(root / "masks" / f"{name}.png", mask)
        rows.append(f"{name},{int(i % 2 == 0)},{int(i % 2 == 1)}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "ids.txt").write_text("".join(f"{i}\n" for i in ids))


SECTION = {"backbone": "small", "width": 8, "aspp_rates": [1, 2], "freeze_bn": False, "crop_size": 24,
           "scale_range": [24, 40], "iterations": 3, "batch_size": 2, "lr": 0.01, "checkpoint_every": 2}


def test_forced_rerun_of_a_finished_training_retrains(tmp_path, monkeypatch, caplog):
    _seg_data(tmp_path)
    ckpt, work_csv = tmp_path / "ck" / "m.pt", tmp_path / "ck" / "m.loss.csv"
    steps = []
    real = seg.seg_step
    monkeypatch.setattr(seg, "seg_step", lambda m, b: (steps.append(1), real(m, b))[1])

    def run():
        seg.train_segmentation(tmp_path / "ids.txt", tmp_path / "img", tmp_path / "masks", tmp_path / "labels.csv",
                               tmp_path / "model.pt", ckpt, work_csv, SECTION, seed=1, device="cpu",
                               loss_out=tmp_path / "loss.csv")
        return torch.load(tmp_path / "model.pt", weights_only=False)

    first = run()
    assert not ckpt.exists() and not work_csv.exists()  # checkpoint and its side CSV go with success
    assert len((tmp_path / "loss.csv").read_text().splitlines()) == 4  # header + 3 steps
    # `snakemake -f` deletes the outputs and reruns the job: it must train all steps again
    (tmp_path / "model.pt").unlink()
    (tmp_path / "loss.csv").unlink()
    steps.clear()
    with caplog.at_level(logging.INFO, logger="wsss.core.train_loop"):
        second = run()
    assert len(steps) == 3 and "resumed" not in caplog.text and "nothing to train" not in caplog.text
    assert len((tmp_path / "loss.csv").read_text().splitlines()) == 4
    for k, v in first["model"].items():  # seeded: the retrained model is the same
        torch.testing.assert_close(second["model"][k], v, rtol=0, atol=0)


@pytest.mark.slow
def test_hint_for_a_damaged_prepared_file_reruns_prepare_dataset(tmp_path):
    """A truncated label PNG inside prepared/: the reader's hint names `snakemake --forcerun
    prepare_dataset`; following it (a plain rerun would do nothing: the folder output exists)
    restores the file."""
    from conftest import TINY, snakemake
    from wsss.core.io import BadInputError, read_label_png

    target = "resources/synthetic/prepared"
    snakemake(target, "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    mask = next((tmp_path / target / "SegmentationClassAug").glob("*.png"))
    good = mask.read_bytes()
    mask.unlink()  # a hard link's sibling must not be damaged too
    mask.write_bytes(good[: len(good) // 2])
    with pytest.raises(BadInputError) as err:
        read_label_png(mask)
    assert str(mask) in str(err.value) and "--forcerun prepare_dataset" in str(err.value)
    proc = snakemake(target, "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    assert "Nothing to be done" in proc.stdout + proc.stderr  # why the old hint did not work
    snakemake(target, "--cores", "2", "--configfile", str(TINY), "--forcerun", "prepare_dataset", workdir=tmp_path)
    assert read_label_png(mask).shape and mask.read_bytes() == good
