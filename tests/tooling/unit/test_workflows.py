"""The GitHub workflows: valid YAML of the shape Actions needs, least privilege, every action
pinned by commit SHA, production deployed only by hand through an approval environment, and a
deploy script that parses. actionlint and zizmor check the rest in `make lint`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[3]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[object, object]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_workflows_the_operations_need_exist() -> None:
    assert {p.stem for p in WORKFLOWS} >= {
        "ci", "security", "deploy-staging", "deploy-production", "db-migrate"
    }  # fmt: skip


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_a_workflow_is_well_formed_least_privileged_and_pinned(path: Path) -> None:
    workflow = _load(path)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers, path.name
    assert isinstance(workflow.get("permissions"), dict), f"{path.name}: no permissions block"
    assert workflow["permissions"].get("contents") == "read"
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict) and jobs
    for name, job in jobs.items():
        assert job.get("runs-on") and job.get("timeout-minutes"), (path.name, name)
        for step in job.get("steps", []):
            assert ("uses" in step) != ("run" in step), (path.name, name, step)
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False


def test_production_is_deployed_by_hand_after_approval_one_at_a_time() -> None:
    workflow = _load(ROOT / ".github" / "workflows" / "deploy-production.yml")
    triggers = workflow.get("on", workflow.get(True))
    assert set(triggers) == {"workflow_dispatch"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "production"
    assert "deploy/deploy.sh production" in job["steps"][-1]["run"]


def test_the_deploy_script_parses_and_snapshots_before_production() -> None:
    script = ROOT / "deploy" / "deploy.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    rollout = script.read_text().split("staging|production)", 1)[1]
    assert rollout.index("backup create --label pre-deploy") < rollout.index("migrate upgrade")
    # The image's entry point is `betterworld`: commands name the subcommand only.
    assert not re.search(r"run --rm \w+ betterworld", script.read_text())
