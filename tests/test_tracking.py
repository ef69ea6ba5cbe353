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


class _RacingMlflow:
    """Stands in for the mlflow module: `log_input` fails `clashes` times as the SQL store does when
    another process inserted the same dataset between its lookup and its insert, then succeeds."""

    def __init__(self, clashes: int, cause: Exception):
        import mlflow

        self.exceptions, self.clashes, self.cause, self.calls = mlflow.exceptions, clashes, cause, 0

    def log_input(self, dataset, context, tags):
        self.calls += 1
        if self.calls <= self.clashes:
            raise self.exceptions.MlflowException("commit failed") from self.cause


def _unique_clash():
    from sqlalchemy.exc import IntegrityError

    return IntegrityError("INSERT INTO datasets", {}, Exception("UNIQUE constraint failed: datasets.digest"))


def test_a_lost_dataset_insert_race_is_retried(tmp_path):
    racing = _RacingMlflow(clashes=1, cause=_unique_clash())
    tracking.log_dataset(racing, "aflw2000", tmp_path, "9e92f22f", "test", "synthetic")
    assert racing.calls == 2


def test_other_store_errors_and_a_clash_that_persists_are_raised(tmp_path):
    import mlflow

    other = _RacingMlflow(clashes=1, cause=ValueError("disk full"))
    with pytest.raises(mlflow.exceptions.MlflowException):
        tracking.log_dataset(other, "aflw2000", tmp_path, "9e92f22f", "test", "synthetic")
    assert other.calls == 1
    stuck = _RacingMlflow(clashes=5, cause=_unique_clash())
    with pytest.raises(mlflow.exceptions.MlflowException):
        tracking.log_dataset(stuck, "aflw2000", tmp_path, "9e92f22f", "test", "synthetic")
    assert stuck.calls == 3
