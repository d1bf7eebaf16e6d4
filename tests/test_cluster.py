"""Grading on a Dask cluster gives the same gradebook as grading locally.

A LocalCluster of two worker processes (one thread each, loopback only) stands in for a
real cluster: the grader's WorkerPlugin starts a sandbox worker in each, submissions go
out as bytes and come back as completed, into a gradebook compared with the serial one.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from distributed import Client

from generated_class import copy_subset, gradebook_summary, serial_run
from grader.classroom.batch import Options
from grader.cli import main
from grader.classroom.cluster import ClusterError, _local_options, grade_on_cluster, local_cluster


def test_a_worker_finds_the_assignment_by_name_when_the_clients_folder_is_not_there():
    options = Options(assignment="/home/someone-else/checkout/assignments/conv_bn")
    assert _local_options(options).assignment == "conv_bn"
    here = Options(assignment="conv_bn")
    assert _local_options(here) is here


def test_an_unreachable_scheduler_is_reported_not_hung():
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        list(grade_on_cluster([Path("x.ipynb")], Options(assignment="conv_bn"), "tcp://127.0.0.1:9",
                              fingerprint="", connect_timeout=2))


@pytest.mark.slow
def test_the_dask_path_gives_the_same_gradebook_as_the_local_path(tmp_path, capsys):
    run = serial_run()
    submissions, results = tmp_path / "submissions", tmp_path / "results"
    keys = copy_subset(run, submissions, 10)  # every kind of sample, and the truncated notebook
    assert any(run.json_lines[k]["errors"] for k in keys)
    with local_cluster(n_workers=2) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        code = main(["grade", str(submissions), "-a", "conv_bn", "--out", str(results),
                     "--cluster", cluster.scheduler_address, "--format", "json"])
        with Client(cluster) as client:
            plugins_left = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    captured = capsys.readouterr()
    assert code == 1, captured.err[-3000:]  # the truncated notebook has no grade; the rest went on
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == len(keys)
    assert gradebook_summary(results) == gradebook_summary(run.results, set(keys))
    # graded on the Dask workers, each holding its own sandbox worker, none left running after
    db = sqlite3.connect(results / "gradebook.sqlite")
    hosts = {h for (h,) in db.execute("SELECT host FROM submissions WHERE status = 'graded'")}
    backend = db.execute("SELECT backend FROM runs").fetchone()[0]
    db.close()
    assert backend.startswith("dask tcp://127.0.0.1:")
    assert 1 <= len(hosts) <= 2 and all(not h.endswith(f":{os.getpid()}") for h in hosts)
    assert all("grader-sandbox" not in names for names in plugins_left.values())
