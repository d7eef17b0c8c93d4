"""The deployed definition, made runnable by the interpreter without changing what it does.

Six differences between AWS and aws-local-stepfunctions are bridged here, and only these
(two more, inside the interpreter, in runner.cjs):

- `${Function_<name>}` placeholders (filled by CloudFormation on AWS) become Lambda ARNs
  that the simulator maps back to the handler named <name>;
- a Task without TimeoutSeconds runs, on AWS, until the execution's own timeout; the
  interpreter would stop it after 60 s, so it gets the execution's TimeoutSeconds;
- `"ResultPath": "$"` (the result replaces the input, the default) is dropped: the
  interpreter 3.0.0 would store the result under a key named "$" instead;
- a Fail state's CausePath or ErrorPath may be an intrinsic function on AWS; the
  interpreter reads them as paths only, so a Pass named `<name> (cause)` computes them
  first (every transition to the Fail state goes through it);
- the interpreter reads no ItemReader (Distributed Map). Such a Map becomes a Task named
  like the Map, which asks the simulator for the items (an S3 object read the way Step
  Functions reads it) and hands them to the interpreter, then the Map itself, renamed
  `<name> (items)`, iterating over them inline. Its ItemSelector, body, MaxConcurrency,
  ResultPath and Catch are unchanged;
- the interpreter calls no AWS service but Lambda. A DynamoDB or SQS Task (a singleton
  layer's lock) is handed to the simulator as a `lambda:invoke` of a stand-in function
  named after the integration, its Parameters as the payload (bakery.simulate.services
  answers it with the service's own response); its ResultSelector, ResultPath, Retry and
  Catch are unchanged.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from bakery.compile.states import LAMBDA_INVOKE
from bakery.simulate import services

ITEM_READER = "bakery:itemReader"
ACCOUNT = "000000000000"
_PLACEHOLDER = re.compile(r"\$\{Function_([A-Za-z0-9_]+)\}")


class Unsupported(Exception):
    """The definition uses something the simulator does not emulate."""


def function_arn(region: str, prefix: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{prefix}-{name}"


def substitute_functions(text: str, region: str, prefix: str) -> tuple[str, dict[str, str]]:
    """The definition text with Lambda ARNs for its placeholders; {arn: function name}."""
    names: dict[str, str] = {}

    def arn(match: re.Match) -> str:
        value = function_arn(region, prefix, match.group(1))
        names[value] = match.group(1)
        return value

    return _PLACEHOLDER.sub(arn, text), names


def prepare(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(runnable definition, {Task state: resource}, [states with a Retry])."""
    out = copy.deepcopy(definition)
    tasks: dict[str, str] = {}
    retrying: list[str] = []
    counter = [0]
    timeout = out.get("TimeoutSeconds")

    def walk(states: dict[str, Any]) -> None:
        for name in list(states):
            state = states[name]
            if "Retry" in state:
                retrying.append(name)
            if state.get("ResultPath", None) == "$":
                del state["ResultPath"]
            if state["Type"] == "Task":
                if state["Resource"] in services.RESOURCES:
                    state["Parameters"] = {
                        "FunctionName": services.stand_in(state["Resource"]),
                        "Payload": state.get("Parameters", {}),
                    }
                    state["Resource"] = LAMBDA_INVOKE
                tasks[name] = state["Resource"]
                if timeout and "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                    state["TimeoutSeconds"] = timeout
            elif state["Type"] == "Parallel":
                for branch in state["Branches"]:
                    walk(branch["States"])
            elif state["Type"] == "Map":
                body = state.get("ItemProcessor") or state.get("Iterator")
                walk(body["States"])
                if "ItemReader" in state:
                    _inline(states, name, counter, tasks)

    walk(out["States"])
    _fail_intrinsics(out)
    return out, tasks, retrying


def _fail_intrinsics(scope: dict[str, Any]) -> None:
    """In `scope` and every nested one: Fail states with intrinsic Cause/ErrorPath."""
    states = scope["States"]
    for state in list(states.values()):
        for nested in state.get("Branches", []):
            _fail_intrinsics(nested)
        body = state.get("ItemProcessor") or state.get("Iterator")
        if body:
            _fail_intrinsics(body)
    moved: dict[str, str] = {}
    for name, state in list(states.items()):
        if state["Type"] != "Fail":
            continue
        computed = {
            f"{key}.$": state[key]
            for key in ("ErrorPath", "CausePath")
            if str(state.get(key, "")).startswith("States.")
        }
        if not computed:
            continue
        for key in computed:
            state[key[:-2]] = f"$.bakery_fail.{key[:-2]}"
        pass_name = f"{name} (cause)"
        states[pass_name] = {
            "Type": "Pass",
            "Parameters": computed,
            "ResultPath": "$.bakery_fail",
            "Next": name,
        }
        moved[name] = pass_name
    if not moved:
        return
    if scope.get("StartAt") in moved:
        scope["StartAt"] = moved[scope["StartAt"]]
    for name, state in states.items():
        if name in moved.values():
            continue
        for holder in [state, *state.get("Choices", []), *state.get("Catch", [])]:
            for key in ("Next", "Default"):
                if holder.get(key) in moved:
                    holder[key] = moved[holder[key]]


def _inline(states: dict[str, Any], name: str, counter: list[int], tasks: dict) -> None:
    state = states[name]
    if "ItemBatcher" in state:
        raise Unsupported(f"Map {name!r}: ItemBatcher is not simulated")
    if "ResultWriter" in state and state.get("ResultPath", "$") is not None:
        raise Unsupported(f"Map {name!r}: ResultWriter with a ResultPath is not simulated")
    reader = state.pop("ItemReader")
    key = f"m{counter[0]}"
    counter[0] += 1
    mapped = f"{name} (items)"
    for field in ("ResultWriter", "ToleratedFailurePercentage", "ToleratedFailureCount", "Label"):
        state.pop(field, None)
    state["ItemsPath"] = f"$$.BakeryItems.{key}"
    processor = state.get("ItemProcessor")
    if processor:
        processor["ProcessorConfig"] = {"Mode": "INLINE"}
    read: dict[str, Any] = {
        "Type": "Task",
        "Comment": f"Simulator: read the items of {name} (its ItemReader).",
        "Resource": ITEM_READER,
        "Parameters": {
            "Key": key,
            "Resource": reader["Resource"],
            "ReaderConfig": reader.get("ReaderConfig", {}),
            "Parameters": reader.get("Parameters", {}),
        },
        "ResultPath": None,
        "Next": mapped,
    }
    if "Catch" in state:
        read["Catch"] = state["Catch"]
    states[name] = read
    states[mapped] = state
    tasks[name] = ITEM_READER
