"""`python -m pipeline.predict` on a sample portrait that an installed package ships (matplotlib's
grace_hopper.jpg, public domain), on an image without a face, on a short video made from the
portrait, and on bad inputs. A randomly initialised checkpoint serves: the angles only have to
equal what the evaluate path predicts for the same crop, not be right."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from matplotlib import cbook
from PIL import Image

from models.registry import build_model
from pipeline.data import faces
from pipeline.data.cropping import crop_dataset
from pipeline.data.media import read_image
from pipeline.data.store import load_store
from pipeline.engine.inference import load_checkpoint, predict, save_checkpoint
from pipeline.predict import main

from tests.support import REAL_AFLW2000, ROOT, experiment, needs_real_aflw2000, run

PORTRAIT = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    exp = experiment("x", "dadl")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, exp, build_model(exp.model, exp.hparams))
    return path


def predict_cli(*argv, capsys):
    """(exit status, stdout, stderr lines) of pipeline.predict's main(argv), run in this process."""
    try:
        main([*map(str, argv), "--no-progress"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def rows(out: Path) -> list[dict]:
    with open(out / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def video_frames(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    fps, n = cap.get(cv2.CAP_PROP_FPS), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, fps


def test_portrait_one_face_angles_equal_the_evaluate_path(checkpoint, tmp_path, capsys):
    code, _, err = predict_cli("--checkpoint", checkpoint, PORTRAIT, "--out", tmp_path / "out", capsys=capsys)
    assert code == 0, err
    (row,) = rows(tmp_path / "out")
    assert row["file"] == str(PORTRAIT) and row["frame"] == "0" and row["faces"] == "1" and float(row["score"]) >= 0.5
    assert (tmp_path / "out" / "annotated" / "grace_hopper.jpg").is_file()

    # The evaluate path on the same crop: the portrait as an AFLW2000 sample whose landmark box is
    # the one predict derived from the detection, cropped and predicted as `pipeline.evaluate` does.
    (face,) = faces.detect(read_image(PORTRAIT))
    assert [float(row[k]) for k in ("x0", "y0", "x1", "y1")] == pytest.approx(face.box, abs=0.01)
    x0, y0, x1, y1 = faces.landmark_box(face.box)
    folder = tmp_path / "aflw"
    folder.mkdir()
    shutil.copy(PORTRAIT, folder / "image00001.jpg")
    scipy.io.savemat(folder / "image00001.mat", {"Pose_Para": np.zeros((1, 7)), "pt2d": np.array([[x0, x1], [y0, y1]])})
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    crop_dataset("aflw2000", folder, "test", exp.crop, tmp_path / "crops", role="test")
    store = load_store(tmp_path / "crops" / "aflw2000")
    expected = predict(model, store, [0], exp.input_size)[0]
    crop = [float(row[f"crop_{k}"]) for k in ("x0", "y0", "x1", "y1")]
    assert crop == pytest.approx(store.labels[["bx0", "by0", "bx1", "by1"]].to_numpy()[0], abs=0.01)
    assert [float(row[a]) for a in ("yaw", "pitch", "roll")] == pytest.approx(expected, abs=1e-3)


def test_image_without_a_face_is_a_row_saying_so(checkpoint, tmp_path, capsys):
    ramp = np.linspace(0, 255, 240 * 320 * 3).reshape(240, 320, 3).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "wall.png")
    code, out, err = predict_cli("--checkpoint", checkpoint, tmp_path / "wall.png", "--out", tmp_path / "out", capsys=capsys)
    assert code == 0, err
    (row,) = rows(tmp_path / "out")
    assert row["faces"] == "0" and row["yaw"] == "" and row["x0"] == ""
    assert "1 frames without a face" in out
    assert (tmp_path / "out" / "annotated" / "wall.png").is_file()


def test_video_one_row_per_frame_and_same_frame_count_and_rate(checkpoint, tmp_path, capsys):
    image = read_image(PORTRAIT)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (image.shape[1], image.shape[0]))
    for shift in range(6):
        writer.write(np.ascontiguousarray(np.roll(image, 4 * shift, axis=1)[:, :, ::-1]))
    writer.release()
    code, _, err = predict_cli("--checkpoint", checkpoint, tmp_path / "clip.mp4", "--out", tmp_path / "out", "--batch-size", "4", capsys=capsys)
    assert code == 0, err
    table = rows(tmp_path / "out")
    assert [r["frame"] for r in table] == [str(i) for i in range(6)] and all(r["faces"] == "1" for r in table)
    assert video_frames(tmp_path / "out" / "annotated" / "clip.mp4") == (6, pytest.approx(12.0))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["videos"] == 1 and summary["media"][0]["fps"] == pytest.approx(12.0)


def test_folder_skips_and_reports_an_unreadable_file(checkpoint, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    shutil.copy(PORTRAIT, photos / "trip" / "portrait.jpg")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "notes.txt").write_text("ignored")
    code, out, err = predict_cli("--checkpoint", checkpoint, photos, "--out", tmp_path / "out", capsys=capsys)
    assert code == 0, err
    assert [(r["file"], r["faces"]) for r in rows(tmp_path / "out")] == [(str(photos / "trip" / "portrait.jpg"), "1")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["file"] for s in summary["skipped"]] == [str(photos / "broken.jpg")] and summary["ignored_files"] == 1
    assert "broken.jpg: image does not decode" in out
    assert (tmp_path / "out" / "annotated" / "photos" / "trip" / "portrait.jpg").is_file()


@pytest.mark.parametrize("bad", ["missing input", "bad checkpoint", "unreadable image", "unreadable video", "out holds other files"])
def test_bad_input_one_line_exit_2_nothing_written(bad, checkpoint, tmp_path, capsys):
    inputs, ckpt, out = [PORTRAIT], checkpoint, tmp_path / "out"
    if bad == "missing input":
        inputs = [PORTRAIT, tmp_path / "nowhere.jpg"]
    elif bad == "bad checkpoint":
        ckpt = tmp_path / "model.pt"
        ckpt.write_bytes(b"\x80\x02 not a checkpoint")
    elif bad == "unreadable image":
        inputs = [tmp_path / "broken.jpg"]
        inputs[0].write_bytes(b"\xff\xd8\xff truncated")
    elif bad == "unreadable video":
        inputs = [tmp_path / "broken.mp4"]
        inputs[0].write_bytes(b"not a video")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("keep me")
    code, _, err = predict_cli("--checkpoint", ckpt, *inputs, "--out", out, capsys=capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    if bad == "out holds other files":
        assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    else:
        assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))  # no temporary folder left behind


@pytest.mark.slow
def test_command_line_error_is_one_stderr_line(tmp_path):
    """The same through `python -m` (whatever the imports print to stderr counts here)."""
    proc = run(ROOT, "python", "-m", "pipeline.predict", "--checkpoint", tmp_path / "none.pt", PORTRAIT, "--out", tmp_path / "out", check=False)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "none.pt" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@needs_real_aflw2000
def test_detector_on_real_aflw2000_and_its_landmark_offsets():
    """YuNet finds the labelled face in >= 98% of the 400 real images (396 when measured), and the
    median offsets from its box to the landmark box are still faces.LANDMARK_OFFSETS."""
    from pipeline.data.readers import read_mat_label

    offsets, found = [], 0
    images = sorted(REAL_AFLW2000.glob("image*.jpg"))
    for path in images:
        _, (lx0, ly0, lx1, ly1) = read_mat_label(path.with_suffix(".mat"))
        cx, cy = (lx0 + lx1) / 2, (ly0 + ly1) / 2
        hits = [f for f in faces.detect(read_image(path)) if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]]
        if hits:
            found += 1
            x0, y0, x1, y1 = hits[0].box
            w, h = x1 - x0, y1 - y0
            offsets.append(((lx0 - x0) / w, (ly0 - y0) / h, (lx1 - x1) / w, (ly1 - y1) / h))
    assert len(images) == 400 and found >= 392
    assert np.median(offsets, axis=0) == pytest.approx(faces.LANDMARK_OFFSETS, abs=0.015)


@pytest.mark.slow  # five evaluate runs with MLflow logging (10 s); the flip arithmetic has a fast test in test_batches.py
def test_evaluate_flip_follows_the_checkpoint_unless_told(checkpoint, tmp_path, monkeypatch, capsys):
    """`pipeline.evaluate --checkpoint` scores with test-time flip augmentation when the checkpoint's
    experiment says test_flip, and --flip / --no-flip override it; the JSON says which. --pitch-view
    reads pitch from a coarser view. Any of these flags without --checkpoint is one line and exit status 2."""
    from pipeline.evaluate import main as evaluate_main  # noqa: PLC0415

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    folder = tmp_path / "aflw"
    folder.mkdir()
    shutil.copy(PORTRAIT, folder / "image00001.jpg")
    scipy.io.savemat(folder / "image00001.mat", {"Pose_Para": np.array([[0.2, -0.3, 0.1, 0, 0, 0, 0]]),
                                                 "pt2d": np.array([[150.0, 380.0], [170.0, 420.0]])})
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    assert exp.test_flip is False
    flipping = tmp_path / "flipping.pt"  # the same weights, its experiment saying test_flip
    save_checkpoint(flipping, exp.model_copy(update={"test_flip": True}), model)
    crop_dataset("aflw2000", folder, "test", exp.crop, tmp_path / "crops", role="test")
    store = load_store(tmp_path / "crops" / "aflw2000")
    plain, flipped = (predict(model, store, [0], exp.input_size, flip=f)[0] for f in (False, True))
    assert np.abs(plain - flipped).max() > 1e-3  # a random model is no mirror image of itself
    cases = [(checkpoint, [], plain), (checkpoint, ["--flip"], flipped), (flipping, [], flipped), (flipping, ["--no-flip"], plain)]
    for k, (ckpt_path, flag, expected) in enumerate(cases):
        out = tmp_path / f"case-{k}.json"
        evaluate_main(["--checkpoint", str(ckpt_path), "--dataset", "aflw2000", "--root", str(folder), "--out", str(out), *flag])
        result = json.loads(out.read_text())
        assert result["test_flip"] is (expected is flipped) and result["n"] == 1
        with open(out.with_suffix(".csv"), newline="") as f:
            (row,) = csv.DictReader(f)
        assert [float(row[f"pred_{a}"]) for a in ("yaw", "pitch", "roll")] == pytest.approx(expected, abs=1e-3), (k, flag)
    viewed = predict(model, store, [0], exp.input_size, pitch_view=exp.input_size[0] // 2)[0]
    assert abs(viewed[1] - plain[1]) > 1e-3 and np.allclose(viewed[[0, 2]], plain[[0, 2]], atol=1e-5)
    out = tmp_path / "viewed.json"
    evaluate_main(["--checkpoint", str(checkpoint), "--dataset", "aflw2000", "--root", str(folder), "--out", str(out),
                   "--pitch-view", str(exp.input_size[0] // 2)])
    assert json.loads(out.read_text())["pitch_view"] == exp.input_size[0] // 2
    with open(out.with_suffix(".csv"), newline="") as f:
        (row,) = csv.DictReader(f)
    assert [float(row[f"pred_{a}"]) for a in ("yaw", "pitch", "roll")] == pytest.approx(viewed, abs=1e-3)
    capsys.readouterr()
    for flag in ("--flip", "--no-flip", "--pitch-view=8", f"--pitch-level-from={checkpoint}"):
        with pytest.raises(SystemExit) as exc:
            evaluate_main(["dadl", flag])
        assert exc.value.code == 2 and "with --checkpoint" in capsys.readouterr().err


def test_pitch_level_shift_is_the_median_difference():
    """One shift for every image: the median of the per-image differences, so one image a model
    gets badly wrong does not move it; arrays that do not pair up are refused."""
    from pipeline.analysis.levelling import pitch_level_shift  # noqa: PLC0415

    reference = np.array([0.0, 10.0, -20.0, 5.0, 30.0])
    pitch = reference + np.array([9.0, 8.0, 10.0, 9.5, -60.0])  # four read ~9 deg high, one far off
    shift = pitch_level_shift(pitch, reference)
    assert shift == 9.0 and np.median((pitch - shift) - reference) == 0.0
    assert np.mean(pitch - reference) < 0 < shift  # the far-off image would have dragged a mean the other way
    for a, b in ((pitch, reference[:3]), (np.array([]), np.array([]))):
        with pytest.raises(ValueError, match="equal, non-empty"):
            pitch_level_shift(a, b)


@pytest.mark.slow  # three evaluate runs with MLflow logging
def test_evaluate_pitch_level_from_a_second_checkpoint(checkpoint, tmp_path, monkeypatch, capsys):
    """--pitch-level-from CKPT2 moves every pitch by the one amount that makes its median
    difference from CKPT2's pitch on the same images 0, leaves yaw and roll alone, records the
    shift in the JSON; a missing CKPT2 is one line and exit status 2, nothing written."""
    from pipeline.evaluate import main as evaluate_main  # noqa: PLC0415

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    folder = tmp_path / "aflw"
    folder.mkdir()
    portrait = np.asarray(Image.open(PORTRAIT).convert("RGB"))
    boxes = ([[150.0, 380.0], [170.0, 420.0]], [[120.0, 350.0], [150.0, 400.0]], [[180.0, 420.0], [200.0, 450.0]])
    for k, (box, image) in enumerate(zip(boxes, (portrait, portrait[:, ::-1], portrait))):
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"image0000{k}.jpg")
        scipy.io.savemat(folder / f"image0000{k}.mat", {"Pose_Para": np.array([[0.2, -0.3, 0.1, 0, 0, 0, 0]]),
                                                        "pt2d": np.array(box)})
    _, ckpt = load_checkpoint(checkpoint)
    torch.manual_seed(1)
    other = tmp_path / "other.pt"  # another random model: its pitch differs image by image
    save_checkpoint(other, ckpt.experiment, build_model(ckpt.experiment.model, ckpt.experiment.hparams))

    def table(out: Path) -> np.ndarray:
        with open(out.with_suffix(".csv"), newline="") as f:
            return np.array([[float(r[f"pred_{a}"]) for a in ("yaw", "pitch", "roll")] for r in csv.DictReader(f)])

    plain, ref, levelled = (tmp_path / f"{name}.json" for name in ("plain", "ref", "levelled"))
    for path, out in ((checkpoint, plain), (other, ref)):
        evaluate_main(["--checkpoint", str(path), "--dataset", "aflw2000", "--root", str(folder), "--out", str(out)])
    evaluate_main(["--checkpoint", str(checkpoint), "--dataset", "aflw2000", "--root", str(folder), "--out", str(levelled),
                   "--pitch-level-from", str(other)])
    a, b, c = table(plain), table(ref), table(levelled)
    assert len(a) == 3 and np.ptp(a[:, 1] - b[:, 1]) > 1e-3  # the two models disagree by different amounts
    shift = json.loads(levelled.read_text())["pitch_shift"]
    assert shift == pytest.approx(np.median(a[:, 1] - b[:, 1]), abs=1e-3) and abs(shift) > 1e-3
    assert json.loads(plain.read_text())["pitch_shift"] is None
    assert np.allclose(c[:, 1], a[:, 1] - shift, atol=1e-3) and np.allclose(c[:, [0, 2]], a[:, [0, 2]], atol=1e-4)
    assert abs(np.median(c[:, 1] - b[:, 1])) < 1e-3
    capsys.readouterr()
    missing = tmp_path / "missing.json"
    with pytest.raises(SystemExit) as exc:
        evaluate_main(["--checkpoint", str(checkpoint), "--dataset", "aflw2000", "--root", str(folder), "--out", str(missing),
                       "--pitch-level-from", str(tmp_path / "nope.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and "nope.pt" in err[-1] and not missing.exists() and not missing.with_suffix(".csv").exists()
