"""Evaluate stage, and scoring any checkpoint on any dataset folder.

Stage (one run of an experiment of params.yaml, on the test sets of its protocol):
    python -m pipeline.evaluate EXPERIMENT [--seed K]
reads results/EXPERIMENT/seed-K/model.pt and writes beside it metrics.json ({test set: yaw,
pitch, roll, mae, n, n_filtered, ...}), criteria.json (Criteria II and III) and
predictions/<test set>.csv.

Any checkpoint on any dataset folder (cropped with the checkpoint's own crop settings):
    python -m pipeline.evaluate --checkpoint CKPT --dataset aflw2000 --root DIR --out FILE.json
writes FILE.json (yaw, pitch, roll, mae in degrees, n after the +-99 filter, n_filtered,
criteria II and III) and the per-sample predictions beside it as FILE.csv. --flip / --no-flip
turn test-time flip augmentation on or off (each prediction the mean of the image's and its
mirror's, the mirror's yaw and roll negated back); without either, as the checkpoint's
experiment says (`test_flip`, false unless params.yaml sets it). --pitch-view PX reads pitch
from the crop resampled to PX pixels wide and back (yaw and roll from the crop itself), 0 turns
that off; without it, as the experiment says (`pitch_view`). --pitch-level-from CKPT2 sets the
level of pitch from a second checkpoint: every pitch is shifted by one amount, the median over
the folder's images of this checkpoint's pitch minus CKPT2's (each scored as its experiment
says). It uses no labels, but it needs the whole folder: a label-free alignment on the scored
images themselves (README, "Trained on synthetic, tested on real AFLW2000"). Without it, an
experiment with pitch_level_from (params.yaml) takes that experiment's run of the same seed from
results/; --no-pitch-level scores the checkpoint alone.
Both log an MLflow run.
"""
import argparse
from pathlib import Path

from pipeline.analysis.evaluation import evaluate_checkpoint, evaluate_folder
from pipeline.config.params import DATASETS
from pipeline.core.errors import cli
from pipeline.core.paths import run_dir


def _print(label: str, m: dict) -> None:
    print(f"{label}: MAE {m['mae']:.2f} (yaw {m['yaw']:.2f}, pitch {m['pitch']:.2f}, roll {m['roll']:.2f}) deg, n={m['n']}, {m['n_filtered']} filtered out")


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", help="name under 'experiments' in params.yaml (reads results/NAME/seed-K/model.pt)")
    parser.add_argument("--seed", type=int, default=0, help="which run of the experiment (default 0)")
    parser.add_argument("--checkpoint", type=Path, help="any model.pt written by the harness")
    parser.add_argument("--dataset", help=f"format of --root: {', '.join(DATASETS)}")
    parser.add_argument("--root", type=Path, help="dataset folder (for biwi: the hpdb folder; for biwi_npz: a .npz file or a folder of them)")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="with --checkpoint: average each prediction with its mirror image's, or not (default: the checkpoint's test_flip)")
    parser.add_argument("--pitch-view", type=int, metavar="PX",
                        help="with --checkpoint: read pitch from the crop resampled to PX pixels wide, 0 for none (default: the checkpoint's pitch_view)")
    parser.add_argument("--pitch-level-from", type=Path, metavar="CKPT2",
                        help="with --checkpoint: shift pitch so that its median over the folder matches CKPT2's (no labels used)")
    parser.add_argument("--no-pitch-level", action="store_true",
                        help="with --checkpoint: ignore the experiment's pitch_level_from (score the checkpoint alone)")
    args = parser.parse_args(argv)
    folder_mode = [args.checkpoint, args.dataset, args.root, args.out]
    if args.flip is not None and not args.checkpoint:
        parser.error("--flip/--no-flip go with --checkpoint (the evaluate stage scores as its experiment's test_flip says)")
    if args.pitch_view is not None and (not args.checkpoint or args.pitch_view < 0):
        parser.error("--pitch-view goes with --checkpoint and is a width in pixels, 0 for none")
    if args.pitch_level_from is not None and not args.checkpoint:
        parser.error("--pitch-level-from goes with --checkpoint")
    if args.no_pitch_level and (not args.checkpoint or args.pitch_level_from is not None):
        parser.error("--no-pitch-level goes with --checkpoint, without --pitch-level-from")
    if args.pitch_level_from is not None and not args.pitch_level_from.is_file():
        parser.error(f"--pitch-level-from {args.pitch_level_from}: no such file; give a model.pt written by the harness")
    if args.experiment and not any(folder_mode):
        for test_set, m in evaluate_checkpoint(run_dir(args.experiment, args.seed)).items():
            _print(f"{args.experiment} seed {args.seed} on {test_set}", m)
    elif not args.experiment and all(folder_mode):
        _print(f"{args.checkpoint} on {args.root}", evaluate_folder(args.checkpoint, args.dataset, args.root, args.out, args.flip,
                                                                       args.pitch_view, args.pitch_level_from, not args.no_pitch_level))
    else:
        parser.error("give either EXPERIMENT, or all of --checkpoint, --dataset, --root and --out")


if __name__ == "__main__":
    main()
