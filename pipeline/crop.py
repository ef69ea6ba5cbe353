"""Crop stage: every dataset under data/raw/ -> one crop store under data/crops/<dataset>/.

    python -m pipeline.crop

300W-LP is cropped with the training margin (HopeNet: k drawn per sample), the test sets with
the test margin, BIWI around the head centre projected through rgb.cal, and BIWI's whole frames
are stored too (pipeline.data.cropping). Each side of crop.extra_store_sizes gets a second store of
every dataset (not the frames) under data/crops/<side>px/<dataset>/, for experiments that set
store_size.
"""
from pipeline.config.params import load_params
from pipeline.core.atomic import atomic_dir
from pipeline.core.errors import cli
from pipeline.core.paths import CROPS, crop_store
from pipeline.data.cropping import crop_dataset
from pipeline.data.raw import dataset_folders


@cli
def main():
    cfg = load_params().crop
    folders = dataset_folders()
    with atomic_dir(CROPS) as out:
        for name, (folder, source) in folders.items():
            crop_dataset(name, folder, source, cfg, out)
        for size in cfg.extra_store_sizes:
            extra = cfg.model_copy(update={"store_size": size, "frame_size": None})
            for name, (folder, source) in folders.items():
                crop_dataset(name, folder, source, extra, crop_store(name, size, out).parent)


if __name__ == "__main__":
    main()
