import pytest

from pipeline.config.params import Protocol, ProtocolSpec, validated
from pipeline.core.errors import ConfigError
from pipeline.data.protocols import draw_split, person

PROTOCOLS = {
    "p1": {"train": "300w_lp", "test": ["aflw2000", "biwi"]},
    "p2": {"train": "biwi", "test": ["biwi"], "split": [16, 8]},
    "biwi_12_12": {"train": "biwi", "test": ["biwi"], "split": [12, 12]},
    "biwi_8_16": {"train": "biwi", "test": ["biwi"], "split": [8, 16]},
    "p2_npz": {"train": "biwi_npz", "test": ["biwi_npz"], "split_files": {"train": ["BIWI_train"], "test": ["BIWI_test"]}},
}
BIWI = [f"{i:02d}" for i in range(1, 25)]


def protocol_config(protocols: dict, name: str) -> Protocol:
    """A protocol as an experiment carries it, checked as params.yaml's are."""
    return Protocol(name=name, **validated(ProtocolSpec, protocols[name], "params.yaml", ("protocols", name)).model_dump())


@pytest.mark.parametrize("name, n_train", [("p2", 16), ("biwi_12_12", 12), ("biwi_8_16", 8)])
@pytest.mark.parametrize("seed", range(10))
def test_sequence_splits_are_disjoint_complete_and_seeded(name, n_train, seed):
    proto = protocol_config(PROTOCOLS, name)
    split = draw_split(proto, BIWI, seed, "sequence", "real")
    assert len(split["train"]) == n_train and len(split["test"]) == 24 - n_train
    assert not set(split["train"]) & set(split["test"])
    assert sorted(split["train"] + split["test"]) == BIWI
    assert split == draw_split(proto, BIWI, seed, "sequence", "real")


def test_different_seeds_give_different_splits():
    proto = protocol_config(PROTOCOLS, "p2")
    assert len({tuple(draw_split(proto, BIWI, s, "sequence", "real")["train"]) for s in range(10)}) > 5


@pytest.mark.parametrize("seed", range(20))
def test_person_split_never_puts_a_person_on_both_sides(seed):
    split = draw_split(protocol_config(PROTOCOLS, "p2"), BIWI, seed, "person", "real")
    train_people = {person(s, "real") for s in split["train"]}
    test_people = {person(s, "real") for s in split["test"]}
    assert not train_people & test_people
    assert 16 <= len(split["train"]) <= 17  # a person recorded twice may tip it over


def test_split_scales_to_datasets_with_fewer_sequences():
    split = draw_split(protocol_config(PROTOCOLS, "p2"), ["01", "02", "03", "04", "05", "06"], 0, "sequence", "synthetic")
    assert (len(split["train"]), len(split["test"])) == (4, 2)


def test_file_split_and_cross_dataset_protocols():
    assert draw_split(protocol_config(PROTOCOLS, "p2_npz"), ["BIWI_train", "BIWI_test"], 0, "sequence", "real") == \
        {"train": ["BIWI_train"], "test": ["BIWI_test"], "by": "file"}
    assert draw_split(protocol_config(PROTOCOLS, "p1"), BIWI, 0, "sequence", "real") is None
    with pytest.raises(ConfigError, match="BIWI_test not in the dataset"):
        draw_split(protocol_config(PROTOCOLS, "p2_npz"), ["BIWI_train"], 0, "sequence", "real")


def test_bad_protocols_are_config_errors():
    with pytest.raises(ConfigError, match=r"params\.yaml protocols\.x\.split: .*valid tuple|params\.yaml protocols\.x\.split"):
        protocol_config({"x": {"train": "biwi", "test": ["biwi"], "split": [16]}}, "x")
    with pytest.raises(ConfigError, match=r"params\.yaml protocols\.x\.test\.0: Input should be '300w_lp'"):
        protocol_config({"x": {"train": "biwi", "test": ["aflw"]}}, "x")


def test_testing_on_the_training_dataset_needs_a_split():
    with pytest.raises(ConfigError, match=r"protocols\.x\.test: includes the training dataset biwi without a split"):
        protocol_config({"x": {"train": "biwi", "test": ["biwi"]}}, "x")


def test_rows_follow_the_split():
    import pandas as pd

    from pipeline.data.protocols import rows

    labels = pd.DataFrame({"sequence": ["01", "01", "02", "03", "02"]})
    proto = protocol_config(PROTOCOLS, "p2")
    split = {"train": ["01", "03"], "test": ["02"]}
    assert rows(labels, proto, split, "biwi", "train").tolist() == [0, 1, 3]
    assert rows(labels, proto, split, "biwi", "test").tolist() == [2, 4]
    assert rows(labels, protocol_config(PROTOCOLS, "p1"), None, "aflw2000", "test").tolist() == [0, 1, 2, 3, 4]
