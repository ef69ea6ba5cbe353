"""A user's own photos and video: finding them among the inputs given, and reading their frames.

An input is an image file, a video file or a folder (searched recursively for both, in sorted
order; other files there are ignored and counted). A missing input, or a single file given by
name that is not a readable image or video, is a DataError; an unreadable file found inside a
folder is left to the caller to skip and report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.core.errors import DataError

# FFmpeg (inside OpenCV, read when a video is opened) prints its own complaints about a broken
# video on stderr; the harness reports it itself, in one line.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(frozen=True)
class Media:
    path: Path
    kind: str  # "image" | "video"
    name: str  # where it came from relative to the input given: "photo.jpg", "folder/sub/clip.mp4"


@dataclass
class Found:
    media: list[Media]
    ignored: int  # files in input folders that are neither images nor videos


def kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 pixels, turned upright as the EXIF orientation says (phone photos)."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.array(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: image does not decode ({exc.__class__.__name__}); give a JPEG, PNG or other image file") from None


class Video:
    """Frames of a video file (RGB uint8), its frame rate and its (container's) frame count."""

    def __init__(self, path: Path):
        self.path = path
        self._cap = cv2.VideoCapture(str(path))
        ok = self._cap.isOpened()
        self._first = self._cap.read()[1] if ok else None
        if self._first is None:
            self._cap.release()
            raise DataError(f"{path}: video does not decode (no frame could be read); give an MP4, AVI, MOV or other video file")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else None
        self.frame_count = max(1, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 1))

    def frames(self):
        frame, self._first = self._first, None
        try:
            while frame is not None:
                yield np.ascontiguousarray(frame[:, :, ::-1])
                ok, frame = self._cap.read()
                frame = frame if ok else None
        finally:
            self.close()

    def close(self) -> None:
        self._cap.release()


def _check_readable(item: Media) -> None:
    if item.kind == "image":
        read_image(item.path)
    else:
        Video(item.path).close()


def find_media(inputs, exclude: Path | None = None) -> Found:
    """The images and videos among `inputs` (files and folders), in the order given; files under
    `exclude` (the output folder) and hidden files are left out of folder searches."""
    media, ignored = [], 0
    skip = exclude.resolve() if exclude is not None else None
    for given in map(Path, inputs):
        if given.is_file():
            kind = kind_of(given)
            if kind is None:
                raise DataError(f"{given}: not an image or video file (known suffixes: {' '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})")
            item = Media(given, kind, given.name)
            _check_readable(item)
            media.append(item)
        elif given.is_dir():
            for path in sorted(p for p in given.rglob("*") if p.is_file()):
                rel = path.relative_to(given)
                if any(part.startswith(".") for part in rel.parts) or (skip is not None and skip in path.resolve().parents):
                    continue
                kind = kind_of(path)
                if kind is None:
                    ignored += 1
                else:
                    media.append(Media(path, kind, str(Path(given.resolve().name or "input") / rel)))
        else:
            raise DataError(f"{given}: no such file or folder; give image files, folders of images or video files")
    if not media:
        raise DataError(f"no image or video file in {' '.join(map(str, inputs))} (known suffixes: {' '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})")
    return Found(media, ignored)
