import json
import zipfile

import numpy as np
import pytest

from pipeline.config.params import Crop, Data, validated
from pipeline.core.errors import ConfigError, DataError
from pipeline.data import cropping as crop, readers
from pipeline.data.raw import dataset_folders
from pipeline.data.store import load_store
from pipeline.sources.download import download
from tests.formats import write_biwi_npz, write_mat_sample
from tests.support import merge, repo_params

TINY_SYNTHETIC = {"image_size": 48, "train_per_subset": 1, "test_images": 2, "biwi_sequences": 2, "biwi_frames": 2, "biwi_size": [96, 72]}


def data(sources: dict, **synthetic) -> Data:
    """params.yaml `data` with these sources and the built-in data at TINY_SYNTHETIC's size."""
    raw = merge(repo_params()["data"], {"synthetic": {**TINY_SYNTHETIC, **synthetic}})
    return validated(Data, {**raw, "sources": sources}, "params.yaml", ("data",))


def test_npz_reader_converts_bgr_and_keeps_pose_order(tmp_path):
    rgb = np.zeros((3, 8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    write_biwi_npz(tmp_path / "BIWI_test.npz", rgb, [[10, -20, 30], [0, 0, 0], [0, 120, 0]])
    samples, images = readers.read_biwi_npz(tmp_path)
    assert (samples.n_read, samples.n_filtered) == (3, 1)
    assert images.shape == (2, 8, 8, 3) and images[..., 0].min() == 200 and images[..., 2].max() == 0
    row = samples.table.iloc[0]
    assert (row.yaw, row.pitch, row.roll, row.sequence) == (10, -20, 30, "BIWI_test")


def test_npz_without_pose_is_named(tmp_path):
    np.savez(tmp_path / "x.npz", image=np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"x\.npz: no 'pose' array"):
        readers.read_biwi_npz(tmp_path)


def test_sources_mix_synthetic_local_folder_archive_and_npz(tmp_path):
    aflw = tmp_path / "my_aflw"
    write_mat_sample(aflw, "image00000", [5, 6, 7])
    npz = tmp_path / "fsanet" / "BIWI_noTrack.npz"
    write_biwi_npz(npz, np.zeros((2, 64, 64, 3), np.uint8), [[1, 2, 3], [4, 5, 6]])
    archive = tmp_path / "hpdb.zip"
    with zipfile.ZipFile(archive, "w") as z:  # BIWI raw, wrapped in one top folder as distributed
        from pipeline.core import angles
        from tests.formats import write_biwi_frame

        write_biwi_frame(tmp_path / "src" / "hpdb" / "01", 0, angles.rotation_matrix(10, 0, 0), [0, 0, 900])
        for f in sorted((tmp_path / "src").rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(tmp_path / "src"))
    sources = {"300w_lp": "synthetic", "aflw2000": str(aflw), "biwi": str(archive), "biwi_npz": str(npz)}
    raw = tmp_path / "raw"
    record = download(data(sources), raw=raw, downloads=tmp_path / "dl")
    folders = dataset_folders(raw)
    assert folders["aflw2000"] == (aflw.resolve(), str(aflw))  # an unpacked folder is read in place
    assert folders["300w_lp"][1] == "synthetic" and (raw / "300w_lp" / "AFW").is_dir()
    assert (raw / "biwi" / "01" / "rgb.cal").is_file()  # the wrapper folder hpdb/ is stripped
    assert len(record["biwi"]["sha256"]) == 64
    assert json.loads((raw / "sources.json").read_text()) == record
    out = tmp_path / "crops"
    cfg = Crop.model_validate({**repo_params()["crop"], "store_size": 16, "frame_size": None})
    for name, (folder, source) in folders.items():
        crop.crop_dataset(name, folder, source, cfg, out, workers=1)
    assert load_store(out / "biwi_npz").labels["sequence"].tolist() == ["BIWI_noTrack"] * 2
    assert load_store(out / "aflw2000").meta["source"] == str(aflw)
    assert load_store(out / "biwi").images.shape == (1, 16, 16, 3)


def test_same_render_gives_the_same_sources_record(tmp_path):
    """data/raw must hash the same after a re-render that writes the same images (no timing in it)."""
    cfg = data({"300w_lp": "synthetic", "aflw2000": "synthetic", "biwi": "synthetic"})
    for name in ("a", "b"):
        download(cfg, raw=tmp_path / name, downloads=tmp_path / "dl")
    a, b = ((tmp_path / n / "sources.json").read_bytes() for n in ("a", "b"))
    assert a == b and b"seconds" not in a


@pytest.mark.parametrize("sources, message", [
    ({"300w": "synthetic"}, r"params\.yaml data\.sources\.300w: Input should be '300w_lp', 'aflw2000', 'biwi' or 'biwi_npz', got '300w'"),
    ({"biwi_npz": "synthetic"}, r"params\.yaml data\.sources\.biwi_npz: the built-in renderer writes raw BIWI"),
    ({"aflw2000": None}, r"params\.yaml data\.sources: every dataset is null"),
])
def test_bad_sources_are_config_errors(sources, message):
    with pytest.raises(ConfigError, match=message):
        data(sources)


def test_negative_counts_are_refused_before_anything_is_rendered():
    with pytest.raises(ConfigError, match=r"params\.yaml data\.synthetic\.test_images: Input should be greater than or equal to 1, got -5"):
        data({"300w_lp": "synthetic"}, test_images=-5)


def test_missing_local_path_fails_without_output(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        download(data({"aflw2000": str(tmp_path / "nowhere")}), raw=tmp_path / "raw", downloads=tmp_path / "dl")
    assert not (tmp_path / "raw").exists()


def test_biwi_check_draws_a_sheet(tmp_path):
    from pipeline.biwi_check import draw_centres
    from pipeline.core import angles
    from tests.formats import write_biwi_frame

    for f in range(3):
        write_biwi_frame(tmp_path / "hpdb" / "01", f, angles.rotation_matrix(f * 10, 0, 0), [0, 0, 900])
    assert draw_centres(tmp_path / "hpdb", tmp_path / "check.png").stat().st_size > 1000
