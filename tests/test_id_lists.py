"""An empty or missing id list is caught where the list is read, naming the file and the command
that rebuilds it, before any training starts."""

from __future__ import annotations

import pytest

from wsss.core import results
from wsss.core.io import BadInputError, read_id_list


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_an_empty_list_names_the_file_and_the_command_that_rebuilds_it(tmp_path, text):
    lists = tmp_path / "resources/synthetic/prepared/lists"
    lists.mkdir(parents=True)
    (lists / "train_aug.txt").write_text(text)
    with pytest.raises(BadInputError) as err:
        read_id_list(lists / "train_aug.txt")
    assert str(err.value) == (f"{lists / 'train_aug.txt'}: id list is empty (no id in it); regenerate with "
                              "`snakemake --forcerun prepare_dataset`")
    with pytest.raises(BadInputError, match=r"val.txt: id list is missing; regenerate with `snakemake --forcerun "
                                            r"prepare_dataset`"):
        read_id_list(lists / "val.txt")


def test_an_empty_train_aug_stops_the_training_job_before_it_trains(tmp_path):
    """The DAG on the tiny config with prepared/lists/train_aug.txt emptied: the classifier's job stops
    at the list (no model, no checkpoint, no loss row) and its log says which file and which command;
    that command then rebuilds the list and the same target trains."""
    from conftest import TINY, snakemake

    prepared = tmp_path / "resources/synthetic/prepared"
    snakemake(str(prepared.relative_to(tmp_path)), "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    train_aug = prepared / "lists/train_aug.txt"
    ids = train_aug.read_text()
    train_aug.unlink()  # hard links: never truncate a file in place
    train_aug.write_text("")
    target = results.path("classifier_model", variant="", classifier="cam")
    proc = snakemake(target, "--cores", "1", "--configfile", str(TINY), workdir=tmp_path, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/train_classifier/cam.log").read_text()
    assert (f"{train_aug.relative_to(tmp_path)}: id list is empty (no id in it); regenerate with "
            "`snakemake --forcerun prepare_dataset`") in log
    assert "training cam classifier" not in log and "training set is empty" not in log
    assert not (tmp_path / target).exists() and not (tmp_path / "resources/checkpoints/classifier").exists()
    snakemake(target, "--cores", "1", "--configfile", str(TINY), "--forcerun", "prepare_dataset", workdir=tmp_path)
    assert train_aug.read_text() == ids and (tmp_path / target).is_file()
