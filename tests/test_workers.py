"""Several workers on one study, on a real PostgreSQL server started by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from gen_loop.search import StudyMutex, claim_finalisation, make_sampler, make_storage, open_study
from gen_loop.search.storage import retried_trial_numbers
from gen_loop.search.workers import WORKER_ATTR, fail_dead_trials, mark_finalised, worker_id
from tests.pg_server import PgServer


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("kind", ["postgresql", "sqlite", "journal"])
def test_finalisation_is_claimed_once_and_a_dead_claim_is_taken_over(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'o.db'}",
        "journal": f"journal:{tmp_path / 'study.log'}",
    }.get(kind) or request.getfixturevalue("postgres").url
    name = f"claim-{kind}"
    study = open_study(
        name, make_storage(url, None, None), make_sampler("random", 0, 0, False), {}
    )
    mutex = StudyMutex(url, name)
    with mutex.hold():
        assert claim_finalisation(study, 8, "runs/a") is None  # this worker has it
        holder = claim_finalisation(study, 8, "runs/b")
    assert holder is not None and holder["run_dir"] == "runs/a" and not holder["done"]
    with mutex.hold():
        assert claim_finalisation(study, 9, "runs/c") is None  # a larger budget: a new claim
        mark_finalised(study, 8)
        assert claim_finalisation(study, 8, "runs/d")["done"]  # type: ignore[index]
    # A finaliser killed before it was done leaves a claim that a rerun takes over.
    study.set_user_attr("finaliser:n_trials=9", {**worker_id(), "pid": _dead_pid(), "done": False})
    with mutex.hold():
        assert claim_finalisation(study, 9, "runs/e") is None


def test_postgres_mutex_excludes_other_processes(postgres: PgServer, tmp_path: Path) -> None:
    """A second process cannot take the advisory lock while this one holds it."""
    probe = (
        "import sqlalchemy, sys; from gen_loop.search.storage import StudyMutex, database_url; "
        "m = StudyMutex(sys.argv[1], 'mx'); "
        "e = sqlalchemy.create_engine(database_url(sys.argv[1])); "
        "c = e.connect(); print(c.execute(sqlalchemy.text("
        "'SELECT pg_try_advisory_lock(:k)'), {'k': m._key}).scalar())"
    )
    mutex = StudyMutex(postgres.url, "mx")
    with mutex.hold():
        held = subprocess.run([sys.executable, "-c", probe, postgres.url], capture_output=True)
    free = subprocess.run([sys.executable, "-c", probe, postgres.url], capture_output=True)
    assert held.stdout.strip() == b"False", held.stderr[-2000:]
    assert free.stdout.strip() == b"True", free.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.slow
def test_three_workers_share_one_study(
    postgres: PgServer, tmp_path: Path, run_workers: Callable[..., list[tuple[str, str]]]
) -> None:
    n_trials, name = 8, "shared"
    args = [
        *("run", "debug=smoke", f"search.n_trials={n_trials}"),
        "search.floor_factor=1e-6",  # run the whole budget: no early convergence
        f"search.storage={postgres.url}",
        f"search.study_name={name}",
        "hydra.run.dir=run",
    ]
    outputs = run_workers(tmp_path, 3, args)  # like three machines: own folder, MLflow store

    study = optuna.load_study(study_name=name, storage=make_storage(postgres.url, None, None))
    trials = study.trials
    assert len(trials) == n_trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert sorted(t.number for t in trials) == list(range(n_trials))
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == n_trials  # no trial run twice
    runners = {t.user_attrs[WORKER_ATTR]["pid"] for t in trials}
    assert len(runners) >= 2  # the work was shared
    lines = sum(out.count("| floor ") for out, _ in outputs)
    assert lines == n_trials  # each trial ran (and printed) exactly once

    summaries = [json.loads((tmp_path / f"w{i}/run/summary.json").read_text()) for i in range(3)]
    finalisers = [s for s in summaries if s["selected_count"] > 0]
    assert len(finalisers) == 1
    assert "after" in finalisers[0]["evaluation"]
    others = [s for s in summaries if s["selected_count"] == 0]
    assert all(s["finalised_by"]["run_dir"] == finalisers[0]["run_dir"] for s in others)
    assert sum("another worker finalis" in out for out, _ in outputs) == 2
    assert all(s["n_trials"] == n_trials for s in summaries)
    assert {s["best_distance"] for s in summaries} == {finalisers[0]["best_distance"]}
    claim = study.user_attrs[f"finaliser:n_trials={n_trials}"]
    assert claim["done"] and claim["run_dir"] == finalisers[0]["run_dir"]


def test_heartbeat_fails_a_silent_workers_trial_on_another_host(postgres: PgServer) -> None:
    """A worker on another machine is judged by its heartbeat, never by a process id."""
    storage = make_storage(postgres.url, heartbeat_interval_s=1, grace_period_s=2)
    study = open_study("beats", storage, make_sampler("random", 0, 0, False), {})
    remote = {"host": "elsewhere", "pid": os.getpid(), "start": None}
    silent, beating = study.ask(), study.ask()
    for trial in (silent, beating):
        trial.set_user_attr(WORKER_ATTR, remote)
        storage.record_heartbeat(trial._trial_id)
    assert fail_dead_trials(study) == []  # both beat just now
    for _ in range(4):  # one keeps beating, the other fell silent (its machine died)
        time.sleep(1)
        storage.record_heartbeat(beating._trial_id)
    assert fail_dead_trials(study) == [silent.number]
    retry = study.get_trials(states=(TrialState.WAITING,))
    assert [retried_trial_numbers(t) for t in retry] == [[silent.number]]
    assert study.trials[beating.number].state == TrialState.RUNNING
