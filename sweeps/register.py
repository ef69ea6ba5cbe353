"""Register a sweep's best trial's model in the MLflow model registry.

    python sweeps/register.py alpha_beta [--name dadl-alpha-beta-best] [--storage URL]

Takes the COMPLETE trial with the lowest validation MAE of the study (results/sweeps/<study>/,
or the --storage database), finds the MLflow PyTorch model its training run logged, and
registers it under --name (default: <study>-best) as a new version; prints the version and the
URI to load it with (mlflow.pyfunc.load_model, or `mlflow models predict -m URI`).
"""
import argparse

import _root  # noqa: F401
import optuna
from optuna.trial import TrialState

from pipeline.core.errors import DataError, cli
from pipeline.core.paths import RESULTS
from pipeline.engine import tracking
from sweeps.study import open_storage


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        raise DataError(f"study {study.study_name}: no COMPLETE trial yet; run python sweeps/{study.study_name}.py first")
    return min(done, key=lambda t: t.value)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="alpha_beta, sigma or gamma (a folder under results/sweeps/)")
    parser.add_argument("--name", help="registered model name (default: <study>-best)")
    parser.add_argument("--storage", help="the database the sweep used, if not its journal file")
    args = parser.parse_args(argv)
    folder = RESULTS / "sweeps" / args.study
    if not args.storage and not (folder / "journal.log").is_file():
        raise DataError(f"{folder / 'journal.log'}: no such study; run python sweeps/{args.study}.py first, or give --storage")
    try:
        study = optuna.load_study(study_name=args.study, storage=open_storage(args.storage, folder))
    except KeyError:
        raise DataError(f"study {args.study}: not in {args.storage or folder / 'journal.log'}") from None
    trial = best_trial(study)
    run_id = trial.user_attrs.get("train_run_id")
    mlflow = tracking.mlflow_module()
    models = mlflow.search_logged_models(experiment_ids=[tracking.experiment_id()], filter_string=f"source_run_id = '{run_id}'",
                                         output_format="list")
    if not models:
        raise DataError(f"trial {trial.number}: its training run {run_id} logged no MLflow model (trained before models were logged); "
                        "run the sweep again")
    name = args.name or f"{args.study}-best"
    version = mlflow.register_model(models[0].model_uri, name)
    values = ", ".join(f"{k}={v:g}" for k, v in trial.params.items())
    print(f"registered trial {trial.number} ({values}; validation MAE {trial.value:.2f} deg) as {name} version {version.version}: "
          f"models:/{name}/{version.version}")


if __name__ == "__main__":
    main()
