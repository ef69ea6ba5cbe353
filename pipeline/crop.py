"""Crop stage: every dataset under data/raw/ -> one crop store under data/crops/<dataset>/.

    python -m pipeline.crop

300W-LP is cropped with the training margin (HopeNet: k drawn per sample), the test sets with
the test margin, BIWI around the head centre projected through rgb.cal, and BIWI's whole frames
are stored too (pipeline.data.cropping).
"""
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_dir
from pipeline.core.errors import cli
from pipeline.core.paths import CROPS
from pipeline.data.cropping import crop_dataset
from pipeline.data.raw import dataset_folders


@cli
def main():
    cfg = load_params().crop
    folders = dataset_folders()
    with atomic_dir(CROPS) as out:
        for name, (folder, source) in folders.items():
            crop_dataset(name, folder, source, cfg, out)


if __name__ == "__main__":
    main()
