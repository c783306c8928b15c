"""`scripts/infra_check.sh` end to end, and the variable validations run by a real terraform where present."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hcl_config import TERRAFORM

from support import REPO

SCRIPT = REPO / "scripts" / "infra_check.sh"


def infra_check(tf_dir: Path | None = None, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_vars, **({"INFRA_CHECK_DIR": str(tf_dir)} if tf_dir else {})}
    return subprocess.run([str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def tf_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TERRAFORM, tmp_path / "terraform"))


@pytest.mark.infra
@pytest.mark.timeout(900)
def test_infra_check_passes_with_no_failed_check() -> None:
    result = infra_check()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"infra-check: ok: checkov [1-9]\d* passed, 0 failed, \d+ skipped", summary), output
    assert re.search(r"hcl_parse: [1-9]\d* parsed, 0 failed", output)
    if "==> terraform test" in output:
        assert re.search(r"^    ok: [1-9]\d* runs$", result.stdout, re.MULTILINE), output


@pytest.mark.infra
@pytest.mark.timeout(900)
def test_infra_check_fails_when_a_check_fails(tf_copy: Path) -> None:
    function = tf_copy / "modules" / "transform_lambda" / "main.tf"
    text = function.read_text()
    function.write_text("\n".join(line for line in text.splitlines() if "skip=CKV_AWS_116" not in line))
    result = infra_check(tf_copy, TF_PLUGIN_DIR="")  # only checkov matters here
    assert result.returncode != 0
    assert "CKV_AWS_116" in result.stdout
    assert re.search(r"infra-check: FAILED: checkov \d+ passed, 1 failed, \d+ skipped", result.stderr)


@pytest.mark.infra
def test_infra_check_names_a_file_that_does_not_parse(tf_copy: Path) -> None:
    broken = tf_copy / "modules" / "events" / "broken.tf"
    broken.write_text('resource "aws_sqs_queue" "x" {\n  name = \n}\n')
    result = infra_check(tf_copy)
    assert result.returncode != 0
    assert f"{broken}: does not parse as HCL" in result.stderr
    assert "==> checkov" not in result.stdout


# A real terraform evaluates the modules' variable validations offline: a folder holding only a module's
# variables.tf needs no provider. Skipped where terraform is not installed.
VALIDATIONS = [
    ("lake", {"feed_prefixes": ["orders"]}, "each ends with"),
    ("lake", {"feed_prefixes": []}, "at least one prefix"),
    ("lake", {"archive_ia_after_days": 10}, "at least 30"),
    ("warehouse", {"allowed_cidr_blocks": ["0.0.0.0/0"]}, "open to the world"),
    ("warehouse", {"allowed_cidr_blocks": ["10.0.0.0/8", "not-a-cidr"]}, "valid IPv4 CIDR"),
    ("warehouse", {"allowed_cidr_blocks": ["fd00::/8"]}, "valid IPv4 CIDR"),
    ("warehouse", {"subnet_ids": ["subnet-a", "subnet-b"]}, "at least three"),
    ("transform_lambda", {"reserved_concurrency": 0}, "at least 1"),
    ("transform_lambda", {"feeds": {"orders": "/orders/"}}, "does not start with"),
    ("events", {"max_receive_count": 0}, "between 1 and 1000"),
]
VALID = {
    "lake": {"name_prefix": "feedline-test", "feed_prefixes": ["orders/"], "event_queue_arn": "arn"},
    "warehouse": {
        "name_prefix": "feedline-test",
        "kms_key_arn": "arn",
        "vpc_id": "vpc-1",
        "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
        "allowed_cidr_blocks": ["10.20.0.0/16"],
        "processed_bucket_arn": "arn",
    },
    "transform_lambda": {
        "function_name": "feedline-test-transform",
        "artifact_bucket": "b",
        "artifact_key": "k.zip",
        "kms_key_arn": "arn",
        "raw_bucket_arn": "arn",
        "processed_bucket_arn": "arn",
        "quarantine_bucket_arn": "arn",
        "feeds": {"orders": "orders/"},
    },
    "events": {"name_prefix": "feedline-test", "kms_key_arn": "arn", "raw_bucket_arn": "arn"},
}


def terraform_plan(tmp_path: Path, module: str, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    work = tmp_path / module
    work.mkdir(exist_ok=True)
    shutil.copy(TERRAFORM / "modules" / module / "variables.tf", work / "variables.tf")
    (work / "values.tfvars.json").write_text(json.dumps(values))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "NO_COLOR": "1"}
    init = subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"], cwd=work, env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return subprocess.run(
        ["terraform", "plan", "-input=false", "-no-color", "-var-file=values.tfvars.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@needs_terraform
@pytest.mark.parametrize("module", sorted(VALID))
def test_valid_inputs_pass_the_validations(tmp_path: Path, module: str) -> None:
    result = terraform_plan(tmp_path, module, VALID[module])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
@pytest.mark.parametrize(("module", "change", "message"), VALIDATIONS)
def test_bad_inputs_are_rejected(tmp_path: Path, module: str, change: dict[str, Any], message: str) -> None:
    result = terraform_plan(tmp_path, module, {**VALID[module], **change})
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split()), result.stderr
