"""Bad input, faults and hostile files on the real command line: one line, exit status 2, nothing half-written.

`CASES` is the corpus: each case builds its bad input in a fresh tmp folder (data files, run
directories, published folders, configuration files: nothing is committed), runs the
``fastmri-recon`` entry point on it and is checked for exit status 2, at most three lines on stderr,
no traceback, the message fragment it expects, no temporary file left (``.*.tmp``, Keras'
``.*.tmp.weights.h5``, TensorFlow's ``ckpt-*_temp/``) and none of the outputs it names.
"""

import dataclasses
import errno
import fcntl
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_UNET_RUN, random_volume
from data.test_h5 import corrupt
from test_cli import run_main

from fastmri_recon import files
from fastmri_recon.data.h5 import Header

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = [f"--model-config=filters={TINY_UNET_RUN['filters']}", f"--model-config=n_convs={TINY_UNET_RUN['n_convs']}"]


@dataclasses.dataclass
class Case:
    """A command line on a bad input: ``argv``, a fragment of its one-line error, outputs that must not exist after it.

    ``full_disk``: run it on a simulated full disk (every atomic rename fails with ENOSPC).
    """

    argv: list
    message: str
    absent: tuple = ()
    full_disk: bool = False


class Inputs:
    """What the cases build from: a fresh tmp folder, the tiny demo data and the tiny training run (built on first use)."""

    def __init__(self, tmp, request):
        self.tmp, self._request = tmp, request

    @property
    def demo(self):
        return self._request.getfixturevalue("demo_dir")

    @property
    def run(self):
        return self._request.getfixturevalue("tiny_run")

    def file(self, name="file"):
        """A regular file, to put a folder under."""
        path = self.tmp / name
        path.write_text("a regular file\n")
        return path


# ------------------------------------------------------------------ bad data files (evaluate)


def edit_h5(path, attrs=None, **datasets):
    """Replace (None: delete) datasets of an HDF5 file and set attributes."""
    with h5py.File(path, "a") as handle:
        for key, data in datasets.items():
            del handle[key]
            if data is not None:
                handle[key] = data
        handle.attrs.update(attrs or {})


def header_xml(recon=(8, 6), center=6, maximum=11, encoded=(16, 12)):
    return np.bytes_(Header((*encoded, 1), (*recon, 1), center, maximum).to_xml())


def evaluate_file(change, message, **volume):
    """A case: evaluate a folder of one random volume (`random_volume` options) changed by ``change(path, volume)``."""

    def build(inputs):
        path = inputs.tmp / "data" / "file1.h5"
        change(path, random_volume(path, **volume))
        return Case(["evaluate", str(path.parent), "--quiet"], message)

    return build


def existing(kind):
    """A case of the bad files of tests/data/test_h5.py (`corrupt`)."""

    def build(inputs):
        path = inputs.tmp / "data" / "file1.h5"
        path.parent.mkdir()
        return Case(["evaluate", str(path.parent), "--quiet"], corrupt(kind, path))

    return build


def huge_kspace(path, volume):
    with h5py.File(path, "a") as handle:
        del handle["kspace"], handle["reconstruction_esc"]
        handle.create_dataset("kspace", shape=(1, 100000, 100000), dtype=np.complex64, chunks=(1, 64, 64))  # nothing stored
        handle["reconstruction_esc"] = np.ones((1, 8, 6), np.float32)
    edit_h5(path, ismrmrd_header=header_xml(encoded=(100000, 100000), center=50000, maximum=99999))


def external_link(path, volume):
    other = path.parent.parent / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["kspace"] = volume.kspace
    edit_h5(path, kspace=h5py.ExternalLink(str(other), "kspace"))


def external_storage(path, volume):
    secret = path.parent.parent / "secret.bin"  # stands for /etc/passwd
    secret.write_bytes(volume.kspace.tobytes())
    edit_h5(path, kspace=None)
    with h5py.File(path, "a") as handle:
        handle.create_dataset("kspace", volume.kspace.shape, np.complex64, external=[(str(secret), 0, volume.kspace.nbytes)])


def non_utf8_name(inputs):
    directory = inputs.tmp / "data"
    random_volume(directory / "file1.h5")
    os.rename(os.fsencode(directory / "file1.h5"), os.fsencode(directory) + b"/\xff\xfe.h5")
    return Case(["evaluate", str(directory), "--quiet"], "is not UTF-8; rename it")


DATA_CASES = {
    **{f"existing_{kind}": existing(kind) for kind in ("text", "truncated", "no_kspace", "rank", "real", "nan", "target_size", "slices", "no_target", "no_header")},
    "all_zero_target": evaluate_file(lambda p, v: edit_h5(p, reconstruction_esc=np.zeros_like(v.target)), "the target is zero everywhere"),
    "huge_declared_kspace": evaluate_file(huge_kspace, "GiB per slice, more than the 1 GiB"),
    "zero_kspace_columns": evaluate_file(lambda p, v: edit_h5(p, kspace=np.zeros((2, 16, 0), np.complex64)), "kspace has an empty axis"),
    "zero_coils": evaluate_file(lambda p, v: edit_h5(p, kspace=np.zeros((2, 0, 16, 12), np.complex64)), "kspace has an empty axis", multicoil=True),
    "encoding_centre_outside_kspace": evaluate_file(lambda p, v: edit_h5(p, ismrmrd_header=header_xml(center=100)), "outside the k-space's 12 columns"),
    "non_utf8_attribute": evaluate_file(lambda p, v: edit_h5(p, attrs={"acquisition": np.bytes_(b"\xff\xfeAX")}), "attribute 'acquisition' is not UTF-8"),
    "mask_stored_as_bytes": evaluate_file(lambda p, v: edit_h5(p, mask=np.array([b"on"] * 12)), "mask has dtype |S2", mask=True),
    "non_utf8_file_name": non_utf8_name,
    "hdf5_external_link": evaluate_file(external_link, "is an external link to"),
    "hdf5_external_storage": evaluate_file(external_storage, "uses external storage"),
}


# ------------------------------------------------------------------ options and configurations (train, evaluate, reconstruct, demo-data)


def train(inputs, *options, data_dir=None):
    """``train`` of a tiny U-net for 2 steps into ``tmp/runs`` (``options`` last: they override)."""
    runs = str(inputs.tmp / "runs")
    return ["train", "--data-dir", str(data_dir or inputs.demo), *TINY_MODEL, "--epochs", "1", "--steps-per-epoch", "2", "--output-dir", runs, "--quiet", *options]


def config_file(inputs, text, name="bad.yaml"):
    path = inputs.tmp / name
    path.write_text(text)
    return str(path)


def yaml_bomb(levels=6):
    """A 300-byte YAML file whose ``epochs`` is 9**levels strings (shared by aliases)."""
    anchors = ["&l0 [" + ", ".join(["lol" * 5] * 9) + "]"]
    anchors += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return f"epochs: [{', '.join(anchors)}]\n"


HOSTILE_ACTIVATION = {"class_name": "Lambda", "module": "keras.layers", "config": {"function": "print"}}

OPTION_CASES = {
    "evaluate_batch_size_0": lambda i: Case(["evaluate", str(i.demo / "singlecoil_val"), "--batch-size", "0", "--quiet"], "0 is not in the range x>=1"),
    "reconstruct_architecture_without_weights": lambda i: Case(["reconstruct", "--model", "unet", str(i.demo / "singlecoil_test"), str(i.tmp / "out")], "'unet' is an architecture without trained weights", (i.tmp / "out",)),
    "reconstruct_batch_size_negative": lambda i: Case(["reconstruct", "--model", str(i.run), str(i.demo / "singlecoil_test"), str(i.tmp / "out"), "--batch-size", "-4"], "-4 is not in the range x>=1", (i.tmp / "out",)),
    "train_batch_size_0": lambda i: Case(train(i, "--batch-size", "0", "--dry-run"), "batch_size=0: expected a positive integer"),
    "train_batch_size_negative": lambda i: Case(train(i, "--batch-size", "-4", "--dry-run"), "batch_size=-4"),
    "evaluate_output_under_a_file": lambda i: Case(["evaluate", str(i.demo / "singlecoil_val"), "--output-dir", str(i.file() / "out"), "--quiet"], "cannot create this directory"),
    "reconstruct_output_under_a_file": lambda i: Case(["reconstruct", "--model", str(i.run), str(i.demo / "singlecoil_test"), str(i.file() / "out"), "--quiet"], "cannot create this directory"),
    "demo_data_output_under_a_file": lambda i: Case(["demo-data", str(i.file() / "demo"), "--quiet"], "cannot create this directory"),
    "train_output_under_a_file": lambda i: Case(train(i, "--output-dir", str(i.file())), "cannot create this directory"),
    "evaluate_full_disk": lambda i: Case(["evaluate", str(i.demo / "singlecoil_val"), "--output-dir", str(i.tmp / "out"), "--quiet"], "cannot write the results (No space left on device); none was written", (i.tmp / "out" / "results.json",), True),
    "reconstruct_full_disk": lambda i: Case(["reconstruct", "--model", str(i.run), str(i.demo / "singlecoil_test"), str(i.tmp / "out"), "--quiet"], "cannot write (No space left on device)", tuple(i.tmp / "out" / p.name for p in (i.demo / "singlecoil_test").glob("*.h5")), True),
    "demo_data_full_disk": lambda i: Case(["demo-data", str(i.tmp / "demo"), "--image-size", "16", "--quiet"], "cannot write (No space left on device)", (i.tmp / "demo" / "demo_info.json",), True),
    "train_full_disk": lambda i: Case(train(i, "--run-name", "r"), "config.json: cannot write (No space left on device)", (i.tmp / "runs" / "r" / "config.json",), True),
    "nul_in_run_name": lambda i: Case(["train", "--config", config_file(i, 'run_name: "a\\0b"\n'), "--dry-run"], "run_name='a\\x00b': holds a NUL character"),
    "run_name_leaves_output_dir": lambda i: Case(train(i, "--run-name", "../x", "--dry-run"), "run_name='../x': expected a folder name", (i.tmp / "x",)),
    "batch_larger_than_the_data": lambda i: Case(train(i, "--batch-size", "100"), "batch_size=100: the training data holds fewer examples than one batch"),
    "model_config_empty_filters": lambda i: Case(train(i, "--model-config", "filters=[]", "--dry-run"), "filters"),
    "steps_per_epoch_negative": lambda i: Case(train(i, "--steps-per-epoch", "-5", "--dry-run"), "steps_per_epoch=-5: expected a positive integer"),
    "validation_steps_negative": lambda i: Case(train(i, "--validation-steps", "-1", "--dry-run"), "validation_steps=-1: expected a positive integer"),
    "learning_rate_inf": lambda i: Case(["train", "--config", config_file(i, "learning_rate: .inf\n"), "--dry-run"], "learning_rate=inf: expected a finite number"),
    "loss_turns_non_finite": lambda i: Case(
        train(i, "--lr", "1e30", "--optimizer", "adam", "--steps-per-epoch", "3", "--checkpoint-every", "1", "--run-name", "r"),
        "training stopped (learning rate too high? bad data?)",
        (i.tmp / "runs" / "r" / "final.weights.h5", i.tmp / "runs" / "r" / "best.weights.h5"),
    ),
    "yaml_bomb_message_capped": lambda i: Case(["train", "--config", config_file(i, yaml_bomb()), "--dry-run"], "...: expected int"),
    "keras_object_in_model_config": lambda i: Case(train(i, f"--model-config=activation={json.dumps(HOSTILE_ACTIVATION)}", "--dry-run"), "model_config.activation="),
}


# ------------------------------------------------------------------ run directories (train resumes, evaluate / reconstruct load)


def copied_run(inputs):
    """A copy of the tiny run in ``tmp/runs`` and a configuration file resuming it for one more epoch."""
    run = shutil.copytree(inputs.run, inputs.tmp / "runs" / inputs.run.name)
    stored = json.loads((run / "config.json").read_text())
    stored["config"]["output_dir"] = str(run.parent)
    (run / "config.json").write_text(json.dumps(stored))
    resume = inputs.tmp / "resume.json"
    resume.write_text(json.dumps({**stored["config"], "epochs": 2}))
    return run, ["train", "--config", str(resume), "--quiet"]


def locked_run(inputs):
    """Another process trains the run: it holds the run directory's lock."""
    run, argv = copied_run(inputs)
    inputs.held = open(run / ".lock", "a")
    fcntl.flock(inputs.held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return Case(argv, "another process is training this run")


def corrupt_metrics(inputs):
    run, argv = copied_run(inputs)
    (run / "metrics.csv").write_text("garbage,\x00\n1,2\n")
    return Case(argv, "metrics.csv: not a metrics file of this loop")


def truncate_checkpoint(run, number):
    for part in (run / "checkpoints").glob(f"ckpt-{number}.*"):
        part.write_bytes(part.read_bytes()[:20])


def corrupt_checkpoints(inputs):
    run, argv = copied_run(inputs)
    for index in (run / "checkpoints").glob("ckpt-*.index"):
        truncate_checkpoint(run, index.name[5:-6])
    return Case(argv, "every checkpoint is corrupt")


def run_config(text, command):
    def build(inputs):
        run, argv = copied_run(inputs)
        (run / "config.json").write_text(text)
        if command == "evaluate":
            argv = ["evaluate", str(inputs.demo / "singlecoil_val"), "--model", str(run), "--quiet"]
        return Case(argv, "config.json: ")

    return build


INCOMPLETE = json.dumps({"config": {"model": "unet"}})
RUN_CASES = {
    "second_train_on_a_locked_run": locked_run,
    "corrupt_metrics_csv": corrupt_metrics,
    "all_checkpoints_corrupt": corrupt_checkpoints,
    "invalid_run_config_train": run_config("{not json", "train"),
    "invalid_run_config_evaluate": run_config("{not json", "evaluate"),
    "incomplete_run_config_train": run_config(INCOMPLETE, "train"),
    "incomplete_run_config_evaluate": run_config(INCOMPLETE, "evaluate"),
}


# ------------------------------------------------------------------ inputs read through tf.data, published folders


def copied_split(inputs, split, name, nan_slice=None):
    """A copy of a demo split in ``tmp/name``; with ``nan_slice``, its last file's k-space slice holds a NaN."""
    folder = shutil.copytree(inputs.demo / split, inputs.tmp / name / split)
    if nan_slice is not None:
        last = sorted(folder.glob("*.h5"))[-1]
        with h5py.File(last, "a") as handle:
            kspace = handle["kspace"][()]
            kspace[nan_slice, 0, 0] = np.nan
            handle["kspace"][...] = kspace
    return folder


def nan_training_data(inputs):
    train_dir = copied_split(inputs, "singlecoil_train", "data", nan_slice=slice(None))
    copied_split(inputs, "singlecoil_val", "data")
    return Case(train(inputs, data_dir=train_dir.parent), "kspace slices")


def nan_reconstruct_input(inputs):
    """The second of two test files holds a NaN in its last slice: reconstruct writes neither output."""
    test_dir = copied_split(inputs, "singlecoil_test", "in", nan_slice=-1)
    out = inputs.tmp / "out"
    absent = tuple(out / p.name for p in test_dir.glob("*.h5"))
    return Case(["reconstruct", "--model", str(inputs.run), str(test_dir), str(out), "--batch-size", "1", "--quiet"], "contain NaN or Inf", absent)


def published_folder(inputs, change):
    """A copy of the published demo weights folder whose config.json is changed by ``change(entry, folder)``."""
    folder = shutil.copytree(REPO / "weights" / "unet-demo-singlecoil", inputs.tmp / "pub" / "unet-demo-singlecoil")
    entry = json.loads((folder / "config.json").read_text())
    change(entry, folder)
    (folder / "config.json").write_text(json.dumps(entry))
    out = inputs.tmp / "out"
    return ["reconstruct", "--model", str(folder), str(inputs.demo / "singlecoil_test"), str(out), "--quiet"], (out,)


def hostile_published_config(inputs):
    argv, absent = published_folder(inputs, lambda entry, folder: entry["config"].update(activation=HOSTILE_ACTIVATION))
    return Case(argv, "config.activation=", absent)


def published_file_escapes(inputs):
    def change(entry, folder):
        shutil.move(folder / entry["file"], folder.parent / entry["file"])
        entry["file"] = f"../{entry['file']}"

    argv, absent = published_folder(inputs, change)
    return Case(argv, "leaves its folder", absent)


def escaping_manifest_entry(inputs):
    manifest = json.loads((REPO / "weights_manifest.json").read_text())
    manifest["models"][0]["file"] = "/etc/passwd.weights.h5"
    path = inputs.tmp / "manifest.json"
    path.write_text(json.dumps(manifest))
    return Case(["weights", "list", "--manifest", str(path)], "leaves its folder")


PIPELINE_CASES = {
    "nan_in_training_data": nan_training_data,
    "nan_in_reconstruct_input_nothing_written": nan_reconstruct_input,
    "hostile_published_config": hostile_published_config,
    "published_file_leaves_its_folder": published_file_escapes,
    "manifest_file_leaves_its_folder": escaping_manifest_entry,
}

CASES = {**DATA_CASES, **OPTION_CASES, **RUN_CASES, **PIPELINE_CASES}


def no_space(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def leftovers(root):
    """Temporary files and TensorFlow's temporary checkpoint folders under ``root``."""
    patterns = (".*.tmp", ".*.tmp.weights.h5", "ckpt-*_temp")
    return sorted(str(p) for pattern in patterns for p in Path(root).rglob(pattern))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_bad_input_one_line_exit_2_nothing_half_written(name, tmp_path, request, capfd, monkeypatch):
    inputs = Inputs(tmp_path, request)
    case = CASES[name](inputs)
    if case.full_disk:
        monkeypatch.setattr(files.os, "replace", no_space)
    capfd.readouterr()
    status, _, err = run_main(case.argv, capfd)
    assert status == 2, err
    assert 1 <= len(err) <= 3 and not any("Traceback" in line for line in err), err
    assert sum(len(line) for line in err) < 1000, f"{sum(len(line) for line in err)} characters on stderr"
    assert case.message in err[-1], err
    assert leftovers(tmp_path) == []
    assert [str(p) for p in case.absent if p.exists()] == []


@pytest.mark.slow
def test_a_successful_rerun_removes_what_a_killed_one_left(request, tmp_path, capfd):
    inputs = Inputs(tmp_path, request)
    run, argv = copied_run(inputs)
    (run / ".best.weights.h5.x1y2.tmp").write_bytes(b"")
    (run / ".best.tmp.weights.h5").write_bytes(b"")
    (run / "checkpoints" / "ckpt-15_temp").mkdir()
    (run / "checkpoints" / "ckpt-15_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    status, _, err = run_main(argv, capfd)
    assert status == 0, err
    assert leftovers(run) == []
    demo = tmp_path / "demo"
    tiny = ["--train-subjects", "1", "--val-subjects", "1", "--test-subjects", "1", "--slices", "1", "--image-size", "16", "--coils", "2", "--quiet"]
    (demo / "singlecoil_train").mkdir(parents=True)
    (demo / "singlecoil_train" / ".demo_005.h5.abcd.tmp").write_bytes(b"")
    status, _, err = run_main(["demo-data", str(demo), *tiny], capfd)
    assert status == 0, err
    assert leftovers(demo) == []


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_exits_143(request, tmp_path, capfd, monkeypatch):
    from fastmri_recon.training import loop

    monkeypatch.setattr(loop._StopRequest, "__init__", lambda self: setattr(self, "requested", True))  # SIGTERM during step 1
    status, out, err = run_main(train(Inputs(tmp_path, request)), capfd)
    assert status == 143, err
    assert "training stopped by SIGTERM (run again to resume)" in out


@pytest.mark.slow
def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(request, tmp_path, capfd):
    argv = train(Inputs(tmp_path, request), "--checkpoint-every", "1", "--run-name", "r")
    status, _, err = run_main(argv, capfd)
    assert status == 0, err
    truncate_checkpoint(tmp_path / "runs" / "r", 3)  # the epoch's end; ckpt-2 (step 2) is intact
    status, out, err = run_main([*argv, "--epochs", "2"], capfd)
    assert status == 0, err
    assert [line for line in err if "corrupt" in line] == [line for line in err if "ckpt-3: corrupt checkpoint, not used" in line] != [], err
    assert "training done: 2 epochs" in out
