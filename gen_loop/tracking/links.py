"""Links into the MLflow UI: the runs table of an experiment, a run, one of its artifacts.

MLflow 3's UI opens an experiment in its GenAI view unless the URL asks for the classic one
(``workflowType=machine_learning``) or the browser remembers that choice; a fresh browser
does not, so every link gen_loop prints carries the parameter. ``viewStateShareKey`` names an
experiment tag ``mlflow.sharedViewState.<key>`` holding the runs table's columns (read in
MLflow 3.17's UI bundle, checked in headless Chromium: experiments/mlflow_view/RESULTS.md).
"""

from __future__ import annotations

from urllib.parse import quote

#: Where ``mlflow ui`` serves by default.
LOCAL_UI = "http://127.0.0.1:5000"

#: The experiment tag prefix of a shared view state (the runs table's columns and sort).
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."


def is_server(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` is a tracking server (which also serves the UI)."""
    return tracking_uri.startswith(("http://", "https://"))


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves the UI of a local store; None for a tracking server."""
    if is_server(tracking_uri):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def ui_base(tracking_uri: str) -> str:
    """The UI's address: the server itself, or ``mlflow ui``'s default for a local store."""
    return tracking_uri.rstrip("/") if is_server(tracking_uri) else LOCAL_UI


def runs_table_url(tracking_uri: str, experiment_id: str, view_key: str | None = None) -> str:
    """The address of the experiment's runs table, in the classic (machine learning) view.

    Args:
        tracking_uri: the store (a server URL, or a local store opened with ``mlflow ui``).
        experiment_id: the experiment.
        view_key: the key of a shared view state tag of the experiment (its columns), if any.
    """
    url = f"{ui_base(tracking_uri)}/{runs_table_route(experiment_id)}"
    return url + (f"&viewStateShareKey={quote(view_key)}" if view_key else "")


#: The URL parameter that opens the classic (machine learning) view.
CLASSIC_VIEW = "workflowType=machine_learning"


def runs_table_route(experiment_id: str) -> str:
    """The runs table's route inside the UI (``#/...``), for links within MLflow's pages."""
    return f"#/experiments/{experiment_id}/runs?{CLASSIC_VIEW}"


def run_route(experiment_id: str, run_id: str, artifact: str | None = None) -> str:
    """A run's page inside the UI (``#/...``), or its artifact view at ``artifact``."""
    route = f"#/experiments/{experiment_id}/runs/{run_id}"
    return route + (f"/artifacts/{quote(artifact)}" if artifact else "") + f"?{CLASSIC_VIEW}"
