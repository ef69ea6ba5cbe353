"""A trained model on a user's own photos and video: detect each face, crop it with the
checkpoint's own crop rule, predict its yaw, pitch and roll, draw the pose axes.

predict_media(checkpoint, inputs, out) writes the folder `out`, all at once when everything has
run (into a temporary folder renamed at the end, so an error leaves nothing behind):

    predictions.csv  one row per face: file, frame (0 for an image), faces (how many in that
                     frame), face (0, 1, ... most confident first), detector score, detector box
                     x0 y0 x1 y1, the crop box the model saw (crop_x0 ... crop_y1), yaw, pitch,
                     roll (degrees, the harness convention); a frame without a face is one row
                     with faces = 0 and the rest empty
    annotated/       every image with each face's box, pose axes (red: the head's left-to-right,
                     green: up, blue: facing direction) and angles drawn, under the name it was
                     found by; every video as <name>.mp4 at its own frame rate, frame for frame
    summary.json     counts, the files skipped as unreadable (and why), frames per second

The crop is pipeline.data.faces.crop_box (the detector box mapped to a landmark box, then the
checkpoint's rule and test margin), cut with pipeline.data.croprules.cut to crop.store_size and
centre-cropped to the input size by the same batch code as the evaluate path, so a crop gives the
angles `python -m pipeline.evaluate` gives it. Faces are batched across images and frames; the
model runs on the GPU when there is one.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from pipeline.config.experiment import Experiment
from pipeline.core.atomic import atomic_dir
from pipeline.core.axes import axis_segments
from pipeline.core.errors import ConfigError, DataError
from pipeline.data import croprules, faces
from pipeline.data.media import Media, Video, find_media, read_image
from pipeline.data.store import LABEL_COLUMNS, Store
from pipeline.engine.inference import load_checkpoint, predict_as_trained

COLUMNS = ["file", "frame", "faces", "face", "score", "x0", "y0", "x1", "y1",
           "crop_x0", "crop_y0", "crop_x1", "crop_y1", "yaw", "pitch", "roll"]
COLOURS = {"red": (235, 45, 45), "green": (40, 205, 40), "blue": (45, 110, 255)}  # RGB
DEFAULT_FPS = 25.0  # for a video whose container gives no frame rate
KEEP_SUFFIXES = (".jpg", ".jpeg", ".png")  # annotated images keep these; others are written as PNG


def crop_store(crops: np.ndarray) -> Store:
    """An in-memory crop store of `crops` (N x S x S x 3 uint8) without labels, so that the crops
    go through the evaluate path's own batch code (pipeline.data.batches.make_batch)."""
    labels = pd.DataFrame(0.0, index=range(len(crops)), columns=LABEL_COLUMNS)
    return Store(path=Path("<memory>"), images=crops, labels=labels, meta={})


def draw(image: np.ndarray, face: faces.Face, ypr) -> None:
    """Box, pose axes and angles of one face, drawn into an RGB image in place."""
    x0, y0, x1, y1 = face.box
    size = max(x1 - x0, y1 - y0)
    thick = max(1, round(size / 60))
    cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), (255, 255, 255), max(1, thick // 2), cv2.LINE_AA)
    lx0, ly0, lx1, ly1 = faces.landmark_box(face.box)
    for a, b, colour in axis_segments(ypr, ((lx0 + lx1) / 2, (ly0 + ly1) / 2), 0.6 * size):
        cv2.line(image, tuple(int(v) for v in np.round(a)), tuple(int(v) for v in np.round(b)), COLOURS[colour], thick + 1, cv2.LINE_AA)
    text = f"yaw {ypr[0]:.0f} pitch {ypr[1]:.0f} roll {ypr[2]:.0f}"
    scale = max(0.4, size / 300)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2)
    origin = (max(0, min(round(x0), image.shape[1] - tw)), max(th + 2, round(y0) - 6))  # kept inside the image
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 230, 0), max(1, thick), cv2.LINE_AA)


class ImageSink:
    def __init__(self, path: Path):
        self.path = path

    def write(self, image: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(self.path, **({"quality": 90} if self.path.suffix.lower() in (".jpg", ".jpeg") else {}))

    def close(self) -> None:
        pass


class VideoSink:
    """An MP4 written frame by frame at the source's frame rate (opened at the first frame)."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self._writer = path, fps, None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise DataError(f"{self.path}: OpenCV cannot write an MP4 video here (no mp4v encoder?); reinstall opencv-python-headless")
        self._writer.write(np.ascontiguousarray(image[:, :, ::-1]))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


@dataclass
class Pending:
    sink: ImageSink | VideoSink
    file: str
    frame: int
    image: np.ndarray
    faces: list
    boxes: list  # crop boxes, one per face


@dataclass
class Runner:
    """Detects and crops frame by frame; runs the model once per batch of faces (across images),
    then draws, writes and records the frames of that batch in order."""

    model: object
    exp: Experiment
    batch_size: int
    min_score: float
    bar: tqdm
    rows: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    crops: list = field(default_factory=list)

    def add(self, sink, file: str, frame: int, image: np.ndarray) -> int:
        found = faces.detect(image, self.min_score)
        boxes = [faces.crop_box(f.box, self.exp.crop) for f in found]
        if boxes:
            pil = Image.fromarray(image)
            self.crops += [croprules.cut(pil, b, self.exp.crop.store_size) for b in boxes]
        self.pending.append(Pending(sink, file, frame, image, found, boxes))
        if len(self.crops) >= self.batch_size or len(self.pending) >= self.batch_size:
            self.flush()
        return len(found)

    def flush(self) -> None:
        pred = (predict_as_trained(self.model, self.exp, crop_store(np.stack(self.crops)), range(len(self.crops)),
                                   batch_size=max(len(self.crops), 1)) if self.crops else np.zeros((0, 3)))
        k = 0
        for p in self.pending:
            if not p.faces:
                self.rows.append([p.file, p.frame, 0] + [""] * (len(COLUMNS) - 3))
            for i, (face, box) in enumerate(zip(p.faces, p.boxes)):
                ypr = pred[k]
                k += 1
                self.rows.append([p.file, p.frame, len(p.faces), i, f"{face.score:.3f}", *(f"{v:.2f}" for v in face.box),
                                  *(f"{v:.2f}" for v in box), *(f"{v:.4f}" for v in ypr)])
                draw(p.image, face, ypr)
            p.sink.write(p.image)
            self.bar.update(1)
        self.pending, self.crops = [], []


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder to write into")
    if out.is_dir() and any(out.iterdir()) and not (out / "predictions.csv").is_file():
        raise ConfigError(f"--out {out}: the folder holds other files; give a new folder (an earlier predict output there is replaced)")


def _notes(exp: Experiment) -> list[str]:
    if exp.protocol.train == "biwi_frames":
        raise ConfigError(f"{exp.name}: this checkpoint was trained on whole BIWI frames (protocol {exp.protocol.name}), "
                          "not face crops; predict crops faces, so give a checkpoint trained on crops")
    if exp.protocol.train.startswith("biwi"):
        return [f"{exp.name} was trained on BIWI head boxes (squares of crop.biwi_box_mm around the head centre), not on "
                "landmark-box crops: the face crops here follow the landmark-box rule and may frame heads differently"]
    return []


def _out_name(item: Media, used: set) -> Path:
    path = Path(item.name)
    path = path.with_suffix(".mp4") if item.kind == "video" else path if path.suffix.lower() in KEEP_SUFFIXES else path.with_suffix(".png")
    stem, n = path.stem, 2
    while str(path).lower() in used:
        path, n = path.with_name(f"{stem}-{n}{path.suffix}"), n + 1
    used.add(str(path).lower())
    return Path("annotated") / path


def _frame_hint(item: Media) -> int:
    if item.kind == "image":
        return 1
    try:
        video = Video(item.path)
    except DataError:
        return 1
    video.close()
    return video.frame_count


def predict_media(checkpoint: Path, inputs, out: Path, batch_size: int = 16, min_score: float = faces.MIN_SCORE,
                  progress: bool = True) -> dict:
    """Run `checkpoint` on every face of the images and videos in `inputs`; write `out` (see the
    module's docstring) and return its summary."""
    out = Path(out)
    _check_out(out)
    if batch_size < 1 or not 0.0 < min_score < 1.0:
        raise ConfigError(f"--batch-size must be >= 1 and --min-score in (0, 1), got {batch_size} and {min_score}")
    found = find_media(inputs, exclude=out)
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    notes = _notes(exp)
    media, skipped, used = [], [], set()
    start = time.perf_counter()
    with atomic_dir(out) as tmp:
        with tqdm(total=sum(map(_frame_hint, found.media)), desc="predict", unit="frame", disable=not progress) as bar:
            runner = Runner(model, exp, batch_size, min_score, bar)
            for item in found.media:
                name = _out_name(item, used)
                entry = {"file": str(item.path), "kind": item.kind, "annotated": str(name), "frames": 0, "faces": 0}
                try:  # only files found in folders can fail here: those named alone were read once already
                    source = read_image(item.path) if item.kind == "image" else Video(item.path)
                except DataError as exc:
                    skipped.append({"file": str(item.path), "reason": str(exc)})
                    bar.update(1)
                    continue
                if item.kind == "image":
                    entry["faces"] = runner.add(ImageSink(tmp / name), str(item.path), 0, source)
                    entry["frames"] = 1
                else:
                    entry["fps"] = source.fps or DEFAULT_FPS
                    if source.fps is None:
                        notes.append(f"{item.path}: the video gives no frame rate; written at {DEFAULT_FPS:g} frames/s")
                    runner.flush()
                    sink = VideoSink(tmp / name, entry["fps"])
                    for i, frame in enumerate(source.frames()):
                        entry["faces"] += runner.add(sink, str(item.path), i, frame)
                        entry["frames"] += 1
                    runner.flush()
                    sink.close()
                media.append(entry)
            runner.flush()
        seconds = time.perf_counter() - start
        with open(tmp / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(runner.rows)
        frames = sum(m["frames"] for m in media)
        summary = {
            "checkpoint": str(checkpoint), "experiment": exp.name, "model": exp.model, "device": str(next(model.parameters()).device),
            "detector": faces.DETECTOR, "min_score": min_score, "crop": {"rule": exp.crop.rule, "test_k": exp.crop.test_k,
                                                                         "store_size": exp.crop.store_size, "input_size": list(exp.input_size)},
            "images": sum(m["kind"] == "image" for m in media), "videos": sum(m["kind"] == "video" for m in media),
            "frames": frames, "faces": sum(m["faces"] for m in media),
            "frames_without_face": sum(1 for r in runner.rows if r[2] == 0),
            "skipped": skipped, "ignored_files": found.ignored, "notes": notes, "media": media,
            "seconds": round(seconds, 2), "frames_per_second": round(frames / seconds, 2) if seconds > 0 else None,
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
