"""The MLflow helpers on a throw-away SQLite store: the experiment's kind tag and the datasets a
run records (fast; the end-to-end tests check the same through `dvc repro`)."""
import pytest

from pipeline.engine import tracking


@pytest.fixture
def mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tracking.mlflow_module()


def test_experiment_is_tagged_as_model_training(mlflow):
    exp = mlflow.MlflowClient().get_experiment(tracking.experiment_id("kind-test"))
    assert exp.tags[tracking.KIND_TAG] == tracking.KIND
    assert tracking.experiment_id("kind-test") == exp.experiment_id  # found again, not created twice


def test_a_run_records_the_store_it_read(mlflow, tmp_path):
    store = tmp_path / "crops" / "300w_lp"
    store.mkdir(parents=True)
    with mlflow.start_run(experiment_id=tracking.experiment_id("dataset-test")) as run:
        tracking.log_dataset(mlflow, "300w_lp", store, "0123abcd", "training", "synthetic")
        tracking.log_dataset(mlflow, "aflw2000", store, "4567ef01", "test", "synthetic")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    seen = {(d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags}["mlflow.data.context"]) for d in inputs}
    assert seen == {("300w_lp", "0123abcd", "training"), ("aflw2000", "4567ef01", "test")}
    assert all(d.dataset.source_type == "local" and store.as_uri() in d.dataset.source for d in inputs)
