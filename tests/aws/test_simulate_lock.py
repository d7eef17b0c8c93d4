"""A singleton layer's start lock, on the interpreter against moto (bakery.compile.lock,
bakery/lambdas/singleton.py): an execution that finds the lock taken succeeds without
running (no alert) and is re-queued once by the holder; the lock is released after success
(by the definition) and after a failure (by the release rule, which the simulator stands
in for); an expired lock is taken over; of starts at once, one wins.

The fixture layers (tests/fixtures/simulate/sim_lock*.yaml) have one Lambda step whose
handler runs the test's hook (tests/aws/sim_hooks.py), so a test can start the layer
again, or fail, while an execution holds the lock.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
import sim_hooks
from aws_helpers import REPO

from bakery.constructs.alerts import ALERT_STATUSES
from bakery.lambdas import singleton
from bakery.plan import Plan, build_plan
from bakery.simulate import s3 as sim_s3
from bakery.simulate import services
from bakery.simulate.run import Fault, LayerRun, _Session, node_root
from bakery.workspace import load_workspace

FIXTURES = REPO / "tests" / "fixtures" / "simulate"
OTHER = "arn:aws:states:eu-west-2:000000000000:execution:bakery-development-sim-lock:other"


@pytest.fixture(scope="module")
def sim_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    for layer in FIXTURES.glob("*.yaml"):
        shutil.copy(layer, root / "layers" / layer.name)
    return build_plan(load_workspace(root), "development")


@pytest.fixture(autouse=True)
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_hooks, "EVENTS", [])
    monkeypatch.setattr(sim_hooks, "HOOK", None)


class Sim:
    """One moto server and simulator session; runs layers, reads the lock and the queue."""

    def __init__(self, plan: Plan, session: _Session):
        self.plan, self.session = plan, session
        self.dynamodb, self.sqs = boto3.client("dynamodb"), boto3.client("sqs")
        self.table = services.lock_table(self.dynamodb)

    def run(self, layer: str) -> LayerRun:
        return self.session.run_layer(self.plan.layer(layer), lambda _e: None, node_root(REPO))

    def hold(self, layer: str, holder: str = OTHER, expires_in: int = 3600, **extra) -> None:
        item = {
            "layer": {"S": layer},
            "holder": {"S": holder},
            "expires_at": {"N": str(int(time.time()) + expires_in)},
        }
        item.update({k: {"N": str(v)} for k, v in extra.items()})
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def lock(self, layer: str) -> dict | None:
        return self.dynamodb.get_item(TableName=self.table, Key={"layer": {"S": layer}}).get("Item")

    def messages(self, layer: str) -> list[dict]:
        url = services.trigger_queue_url(self.sqs, layer)
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@contextmanager
def simulation(plan: Plan, faults: list[Fault] | None = None) -> Iterator[Sim]:
    with sim_s3.moto_endpoint() as endpoint:
        session = _Session(plan, endpoint, None, faults or [])
        try:
            yield Sim(plan, session)
        finally:
            session.close()
            # boto3's default session keeps the moto credentials it was made with: a later
            # test's client (bakery run without credentials) must not inherit them.
            boto3.DEFAULT_SESSION = None


def test_a_start_while_the_lock_is_held_succeeds_without_running_or_alerting(sim_plan):
    with simulation(sim_plan) as sim:
        sim.hold("sim_lock")
        run = sim.run("sim_lock")
        assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
        assert run.status not in ALERT_STATUSES  # the alert rule's statuses
        assert run.entered() == ["start", "take the lock", "lock taken?", "already running"]
        assert sim_hooks.EVENTS == []  # the step did not run
        lock = sim.lock("sim_lock")
        assert lock is not None and lock["holder"]["S"] == OTHER  # untouched...
        assert lock["deferred"]["N"] == "1"  # ...but for this start, counted on it
        assert sim.messages("sim_lock") == []  # the holder re-queues, when it ends


def test_the_holder_requeues_one_trigger_for_the_starts_it_deferred(sim_plan):
    with simulation(sim_plan) as sim:
        deferred: list[LayerRun] = []
        sim_hooks.HOOK = lambda _event: deferred.extend([sim.run("sim_lock"), sim.run("sim_lock")])
        run = sim.run("sim_lock")
        assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
        assert [(r.status, r.entered()[-1]) for r in deferred] == [
            ("SUCCEEDED", "already running"),
            ("SUCCEEDED", "already running"),
        ]
        assert len(sim_hooks.EVENTS) == 1  # the step ran once, in the holder
        assert run.entered()[-4:] == [
            "release the lock",
            "deferred while running?",
            "re-queue the deferred trigger",
            "succeeded",
        ]
        assert sim.lock("sim_lock") is None  # released
        (message,) = sim.messages("sim_lock")  # one message for both deferred starts
        assert message["layer"] == "sim_lock" and message["deferred"] == "2"
        assert message["requeued_by"] == sim_hooks.EVENTS[0]["execution_id"]  # the holder
        # That message starts the layer once more (the pipe): it runs, and defers nothing.
        sim_hooks.HOOK = None
        rerun = sim.run("sim_lock")
        assert rerun.entered()[-1] == "succeeded" and len(sim_hooks.EVENTS) == 2
        assert sim.messages("sim_lock") == [] and sim.lock("sim_lock") is None


def test_the_lock_is_released_after_a_failing_step_and_after_success(sim_plan):
    def fail(_event):
        deferred.append(sim.run("sim_lock"))  # a trigger during the failing run
        raise RuntimeError("the step broke")

    with simulation(sim_plan) as sim:
        deferred: list[LayerRun] = []
        sim_hooks.HOOK = fail
        run = sim.run("sim_lock")
        # The step's own Fail state, error and cause: the release is the rule's, after it.
        assert (run.status, run.error) == ("FAILED", "sim_lock.work failed")
        assert run.cause.startswith("step sim_lock.work failed: ") and "the step broke" in run.cause
        assert run.entered()[-1] == "work failed"
        assert [(r.status, r.entered()[-1]) for r in deferred] == [("SUCCEEDED", "already running")]
        assert sim.lock("sim_lock") is None
        # The start deferred during the failed run is re-queued, once.
        (message,) = sim.messages("sim_lock")
        assert message["deferred"] == "1"
        assert message["requeued_by"] == sim_hooks.EVENTS[0]["execution_id"]  # the failed one
        # Free again: the next start runs, and releases after success too.
        sim_hooks.HOOK = None
        again = sim.run("sim_lock")
        assert (again.status, again.entered()[-1]) == ("SUCCEEDED", "succeeded")
        assert "work" in again.entered() and sim.lock("sim_lock") is None
        assert sim.messages("sim_lock") == []  # nothing deferred this time


@pytest.mark.parametrize("error", ["States.Timeout", "Lambda.Unknown"])
def test_the_lock_is_released_after_a_task_times_out_or_its_lambda_dies(sim_plan, error):
    with simulation(sim_plan, [Fault("work", error, times=10)]) as sim:
        run = sim.run("sim_lock")
        assert (run.status, run.error) == ("FAILED", "sim_lock.work failed"), run.cause
        assert sim.lock("sim_lock") is None
        assert sim.messages("sim_lock") == []  # nothing was deferred
        sim.session.faults.clear()
        assert sim.run("sim_lock").entered()[-1] == "succeeded"  # the next start runs


def test_a_failure_does_not_release_a_lock_taken_over_by_another(sim_plan):
    """The failed run's lock expired and another execution took it: the release leaves
    that one's lock (and its count) alone."""

    def take_over(_event):
        sim.hold("sim_lock", deferred=2)  # OTHER holds it now
        raise RuntimeError("the step broke")

    with simulation(sim_plan) as sim:
        sim_hooks.HOOK = take_over
        run = sim.run("sim_lock")
        assert run.status == "FAILED"
        lock = sim.lock("sim_lock")
        assert lock is not None and lock["holder"]["S"] == OTHER
        assert lock["deferred"]["N"] == "2" and sim.messages("sim_lock") == []


def test_an_expired_lock_is_taken_over(sim_plan):
    """Its holder timed out or was aborted: no state of it runs again to release it."""
    with simulation(sim_plan) as sim:
        sim.hold("sim_lock", expires_in=-5, deferred=3)
        run = sim.run("sim_lock")
        assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
        assert "work" in run.entered() and len(sim_hooks.EVENTS) == 1
        assert sim.lock("sim_lock") is None
        # The triggers the dead holder deferred are covered: this run started after them.
        assert sim.messages("sim_lock") == []


def test_a_layer_without_triggers_is_not_requeued(sim_plan):
    with simulation(sim_plan) as sim:
        sim.hold("sim_lock_untriggered")
        run = sim.run("sim_lock_untriggered")
        assert (run.status, run.entered()[-1]) == ("SUCCEEDED", "already running")
        lock = sim.lock("sim_lock_untriggered")
        assert lock is not None and "deferred" not in lock
        assert sim_hooks.EVENTS == []


def test_of_starts_at_once_exactly_one_takes_the_lock():
    """Eight takers at the same moment, each in its thread against moto's DynamoDB: the
    conditional write lets one through (ListExecutions, eventually consistent, could let
    several through on AWS; moto's is not, so only the lock's own race is shown here)."""
    with sim_s3.moto_endpoint():
        dynamodb = boto3.client("dynamodb")
        table = services.lock_table(dynamodb)
        start = threading.Barrier(8)
        results: dict[int, dict] = {}

        def take(i: int) -> None:
            start.wait()
            results[i] = singleton.take(dynamodb, table, "sim_lock", f"exec-{i}", 600, True)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [i for i, r in results.items() if r["taken"]]
        assert len(results) == 8 and len(winners) == 1
        (winner,) = winners
        assert all(r["holder"] == f"exec-{winner}" for r in results.values())
        item = dynamodb.get_item(TableName=table, Key={"layer": {"S": "sim_lock"}})["Item"]
        assert item["holder"]["S"] == f"exec-{winner}" and item["deferred"]["N"] == "7"


def test_the_lock_states_are_valid_asl_with_and_without_a_queue(sim_plan, tmp_path):
    from aws_helpers import asl_validate

    from bakery.compile.asl import compile_layer

    paths = []
    for name in ("sim_lock", "sim_lock_untriggered"):
        path = tmp_path / f"{name}.asl.json"
        path.write_text(compile_layer(sim_plan, sim_plan.layer(name)).to_json())
        paths.append(path)
    result = asl_validate(*paths)
    assert result.returncode == 0, result.stdout + result.stderr
