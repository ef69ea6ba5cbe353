"""A trained model on your own photos and video: detect each face, crop it with the checkpoint's
own crop rule, predict yaw, pitch and roll, draw the pose axes.

    python -m pipeline.predict --checkpoint results/dadl/seed-0/model.pt photo.jpg photos/ clip.mp4 --out predicted/

INPUT: image files, folders (searched recursively for images and videos) and video files. Writes
predicted/predictions.csv (one row per face: file, frame, detector box and score, the crop box,
yaw, pitch, roll in degrees; a frame without a face is one row with faces = 0),
predicted/annotated/ (each image, and each video as .mp4 at its own frame rate, with boxes, pose
axes and angles drawn) and predicted/summary.json (counts, unreadable files skipped, frames/s).
Faces come from the YuNet detector (yuface package); see pipeline/data/faces.py for the choice
and for how a detector box maps to the checkpoint's crop rule.
"""
import argparse
from pathlib import Path

from pipeline.analysis.photos import predict_media
from pipeline.core.errors import cli
from pipeline.data.faces import MIN_SCORE


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image file, folder of images, or video file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="any model.pt written by the harness")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (an earlier predict output there is replaced)")
    parser.add_argument("--batch-size", type=int, default=16, help="faces (and frames) per model batch (default 16)")
    parser.add_argument("--min-score", type=float, default=MIN_SCORE, help=f"detector confidence to keep a face (default {MIN_SCORE})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    s = predict_media(args.checkpoint, args.inputs, args.out, args.batch_size, args.min_score, progress=not args.no_progress)
    print(f"{s['experiment']} ({s['model']}, on {s['device']}): {s['images']} images, {s['videos']} videos, {s['frames']} frames, "
          f"{s['faces']} faces; {s['frames_without_face']} frames without a face; {s['frames_per_second']} frames/s")
    for item in s["skipped"]:
        print(f"skipped: {item['reason']}")
    if s["ignored_files"]:
        print(f"ignored {s['ignored_files']} files in the input folders that are neither images nor videos")
    for note in s["notes"]:
        print(f"note: {note}")
    print(f"wrote {args.out}/predictions.csv, {args.out}/annotated/, {args.out}/summary.json")


if __name__ == "__main__":
    main()
