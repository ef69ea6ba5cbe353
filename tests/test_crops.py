import numpy as np
import pytest
from PIL import Image

from pipeline.config.params import Crop
from pipeline.core.errors import ConfigError, DataError
from pipeline.data import cropping as crop, croprules as crops
from tests.support import repo_params

CROP = Crop.model_validate(repo_params()["crop"])


def test_hopenet_margins_are_applied_one_side_after_another():
    # box 100 x 50 at (100, 100); k = 0.2
    x0, y0, x1, y1 = crops.crop_box((100, 100, 200, 150), "hopenet", k=0.2)
    assert x0 == pytest.approx(100 - 0.12 * 100)  # left: 0.6k * w
    assert y0 == pytest.approx(100 - 0.4 * 50)  # top: 2k * h
    assert x1 == pytest.approx(200 + 0.12 * (200 - x0))  # right: 0.6k * the widened width
    assert y1 == pytest.approx(150 + 0.12 * (150 - y0))  # bottom: 0.6k * the heightened height


def test_fsanet_pads_0_6_on_every_side():
    assert crops.crop_box((10, 20, 30, 60), "fsanet") == pytest.approx((-2, -4, 42, 84))


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown crop rule"):
        crops.crop_box((0, 0, 1, 1), "dlib")


def test_cut_pads_outside_the_image_with_black():
    image = Image.new("RGB", (10, 10), (255, 255, 255))
    out = crops.cut(image, (-10, 0, 10, 10), 20)
    assert out.shape == (20, 20, 3)
    assert out[:, :8].max() == 0 and out[:, 12:].min() == 255


def test_undecodable_image_is_named(tmp_path):
    bad = tmp_path / "image00009.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=r"image00009\.jpg: image does not decode"):
        crop._cut_one((str(bad), (0, 0, 4, 4), 8))


def test_store_round_trip_and_head_centre_in_crop_pixels(tmp_path):
    from pipeline.data import readers
    from pipeline.data.store import load_store
    from tests.formats import write_mat_sample

    write_mat_sample(tmp_path / "AFLW2000", "image00000", [10, 20, 30])
    samples = readers.read_aflw2000(tmp_path / "AFLW2000")
    cfg = CROP.model_copy(update={"store_size": 16, "rule": "hopenet"})
    crop.crop_dataset("aflw2000", tmp_path / "AFLW2000", "test fixture", cfg, tmp_path / "crops", workers=1)
    store = load_store(tmp_path / "crops" / "aflw2000")
    assert store.meta["source"] == "test fixture" and store.meta["rule"] == "hopenet"
    boxes = crop.crop_boxes(samples.table, "box", "test", cfg, None)
    crop.build_store("aflw2000", samples, boxes, crop.cut_files(samples.table, boxes, 16, "t", 1), 16, tmp_path / "crops", {})
    store = load_store(tmp_path / "crops" / "aflw2000")
    assert store.images.shape == (1, 16, 16, 3) and store.meta["n"] == 1
    np.testing.assert_allclose(store.ypr[0], [10, 20, 30], atol=1e-5)
    # The rule "box" crops exactly the landmark box, whose centre maps to the crop's middle.
    np.testing.assert_allclose(store.labels[["cx", "cy"]].to_numpy()[0], [8, 8], atol=1e-6)


def test_cropped_folder_is_a_test_store_that_leaves_nothing_behind(tmp_path):
    """cropping.cropped_folder: a folder scored once (evaluate --root, the report's real section,
    benchmarks) becomes a temporary test-role store that is gone after the `with` block."""
    from tests.formats import write_mat_sample

    for i, ypr in enumerate([[10, 20, 30], [-40, 5, 0]]):
        write_mat_sample(tmp_path / "AFLW2000", f"image{i:05d}", ypr)
    with crop.cropped_folder("aflw2000", tmp_path / "AFLW2000", CROP.model_copy(update={"store_size": 16})) as store:
        where = store.path
        assert where.is_dir() and store.images.shape == (2, 16, 16, 3) and store.meta["role"] == "test"
        np.testing.assert_allclose(store.ypr, [[10, 20, 30], [-40, 5, 0]], atol=1e-5)
    assert not where.exists() and not where.parent.exists()


def test_each_dataset_draws_its_own_crop_margins():
    """The margins' random stream comes from the dataset's name: two names of the same length
    (aflw2000, biwi_npz) no longer share it."""
    names = ("300w_lp", "aflw2000", "biwi_npz", "biwi")
    seeds = {crop.name_seed(n) for n in names}
    assert len(seeds) == len(names) and crop.name_seed("aflw2000") == crop.name_seed("aflw2000")
    assert len("aflw2000") == len("biwi_npz")
