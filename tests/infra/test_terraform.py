"""Security properties of infra/terraform, read from the HCL itself (python-hcl2, no terraform, no AWS)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hcl_config import MODULES, TERRAFORM, Config, parse

BUCKET_ROLES = {"raw", "processed", "quarantine", "archive", "artifacts"}
HARDENING = (
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
)
PUBLIC_ACCESS_FLAGS = (
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
)


def as_list(value: Any) -> list[Any]:
    """An HCL list as a list; an expression (a string such as "${[for ...]}") as a one-item list."""
    return value if isinstance(value, list) else [value]


def one(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(blocks) == 1, blocks
    return blocks[0]


def conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Condition variable -> (test, values) of one policy statement."""
    return {c["variable"]: (c["test"], as_list(c["values"])) for c in statement.get("condition", [])}


def principals(statement: dict[str, Any]) -> set[str]:
    return {i for p in statement.get("principals", []) for i in as_list(p["identifiers"])}


def s3_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith("s3:") for a in s["actions"])]


# --- the lake ------------------------------------------------------------------------------------------


def test_every_bucket_role_is_created_and_hardened_alike(modules: dict[str, Config]) -> None:
    lake = modules["lake"]
    assert set(lake.locals["buckets"]) == BUCKET_ROLES
    assert lake.resource("aws_s3_bucket", "this")["for_each"] == "${local.buckets}"
    for kind in HARDENING:
        body = lake.resource(kind, "this")
        assert body["for_each"] == "${local.buckets}", f"{kind} does not cover every bucket"
        assert body["bucket"] == "${aws_s3_bucket.this[each.key].id}", kind
        if kind != "aws_s3_bucket_logging":  # the log bucket does not log into itself
            assert lake.resource(kind, "access_logs")["bucket"] == "${aws_s3_bucket.access_logs.id}", kind


@pytest.mark.parametrize("bucket", ["this", "access_logs"])
def test_buckets_are_versioned_private_and_owner_enforced(modules: dict[str, Config], bucket: str) -> None:
    lake = modules["lake"]
    versioning = one(lake.resource("aws_s3_bucket_versioning", bucket)["versioning_configuration"])
    assert versioning["status"] == "Enabled"
    block = lake.resource("aws_s3_bucket_public_access_block", bucket)
    assert all(block[flag] is True for flag in PUBLIC_ACCESS_FLAGS), block
    ownership = one(lake.resource("aws_s3_bucket_ownership_controls", bucket)["rule"])
    assert ownership["object_ownership"] == "BucketOwnerEnforced"


def test_data_buckets_use_sse_kms_with_the_rotated_customer_key(modules: dict[str, Config]) -> None:
    lake = modules["lake"]
    rule = one(lake.resource("aws_s3_bucket_server_side_encryption_configuration", "this")["rule"])
    default = one(rule["apply_server_side_encryption_by_default"])
    assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.this.arn}"}
    assert rule["bucket_key_enabled"] is True
    key = lake.resource("aws_kms_key", "this")
    assert key["enable_key_rotation"] is True
    assert key["policy"] == "${data.aws_iam_policy_document.key.json}"
    assert all("*" not in principals(s) for s in lake.statements("key")), (
        "no wildcard principal in the key policy"
    )


def test_access_log_bucket_is_the_one_sse_s3_exception(modules: dict[str, Config]) -> None:
    """S3 server access logging cannot deliver to an SSE-KMS bucket; the checkov skip says so."""
    rule = one(
        modules["lake"].resource("aws_s3_bucket_server_side_encryption_configuration", "access_logs")["rule"]
    )
    assert one(rule["apply_server_side_encryption_by_default"])["sse_algorithm"] == "AES256"
    text = (TERRAFORM / "modules" / "lake" / "access_logs.tf").read_text()
    assert "#checkov:skip=CKV_AWS_145:" in text


@pytest.mark.parametrize(("bucket", "document"), [("this", "bucket"), ("access_logs", "access_logs")])
def test_bucket_policies_deny_insecure_transport(
    modules: dict[str, Config], bucket: str, document: str
) -> None:
    lake = modules["lake"]
    policy = lake.resource("aws_s3_bucket_policy", bucket)["policy"]
    assert policy.startswith(f"${{data.aws_iam_policy_document.{document}")
    denials = [s for s in lake.statements(document) if s.get("effect") == "Deny"]
    tls = [s for s in denials if conditions(s).get("aws:SecureTransport") == ("Bool", ["false"])]
    assert tls, f"{document}: no statement denies aws:SecureTransport = false"
    statement = one(tls)
    assert statement["actions"] == ["s3:*"] and principals(statement) == {"*"}
    bucket_arn = as_list(statement["resources"])[0]
    assert bucket_arn.endswith(".arn}")
    assert statement["resources"] == [bucket_arn, f"{bucket_arn}/*"], "the bucket and its objects"


def test_data_bucket_policy_denies_puts_without_the_lake_key(modules: dict[str, Config]) -> None:
    denials = [s for s in modules["lake"].statements("bucket") if s.get("effect") == "Deny"]
    puts = sorted(sorted(conditions(s).items()) for s in denials if s["actions"] == ["s3:PutObject"])
    algorithm, key_id = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    assert puts == [
        [(algorithm, ("StringEquals", ["aws:kms"])), (key_id, ("Null", ["true"]))],
        [(algorithm, ("StringNotEqualsIfExists", ["aws:kms"]))],
        [(key_id, ("StringNotEqualsIfExists", ["${aws_kms_key.this.arn}"]))],
    ], "denied: another algorithm, SSE-KMS without a key id (aws/s3 would be used), another key"


def test_lifecycle_rules_expire_transition_and_clean_up(modules: dict[str, Config]) -> None:
    lake = modules["lake"]
    for bucket in ("this", "access_logs"):
        rule = one(lake.resource("aws_s3_bucket_lifecycle_configuration", bucket)["rule"])
        assert rule["status"] == "Enabled"
        assert one(rule["abort_incomplete_multipart_upload"])["days_after_initiation"]
        assert one(rule["noncurrent_version_expiration"])["noncurrent_days"]
    buckets = lake.locals["buckets"]
    classes = [t["storage_class"] for t in buckets["archive"]["transitions"]]
    assert classes == ["STANDARD_IA", "GLACIER"]
    assert buckets["archive"]["expiration_days"] == "${var.archive_expiration_days}"
    assert buckets["quarantine"]["expiration_days"] == "${var.quarantine_expiration_days}"
    assert buckets["processed"]["expiration_days"] == "${var.processed_expiration_days}"
    assert buckets["raw"]["expiration_days"] is None, "raw files wait for feedline, whatever their age"
    rule = one(lake.resource("aws_s3_bucket_lifecycle_configuration", "this")["rule"])
    dynamic = {name for block in rule["dynamic"] for name in block}
    assert dynamic == {"transition", "expiration"}


def test_data_buckets_log_access_to_the_log_bucket(modules: dict[str, Config]) -> None:
    logging = modules["lake"].resource("aws_s3_bucket_logging", "this")
    assert logging["target_bucket"] == "${aws_s3_bucket.access_logs.id}"
    assert logging["target_prefix"] == "${each.key}/"
    statement = next(s for s in modules["lake"].statements("access_logs") if s.get("effect") != "Deny")
    assert principals(statement) == {"logging.s3.amazonaws.com"}
    assert set(conditions(statement)) == {"aws:SourceArn", "aws:SourceAccount"}


def test_raw_bucket_sends_feed_prefix_events_to_sqs(modules: dict[str, Config]) -> None:
    notification = modules["lake"].resource("aws_s3_bucket_notification", "raw")
    assert notification["bucket"] == '${aws_s3_bucket.this["raw"].id}'
    queue = one(notification["dynamic"])["queue"]
    assert queue["for_each"] == "${toset(var.feed_prefixes)}"
    content = one(queue["content"])
    assert content["queue_arn"] == "${var.event_queue_arn}"
    assert content["events"] == ["s3:ObjectCreated:*"]
    assert content["filter_prefix"] == "${queue.value}"


# --- events --------------------------------------------------------------------------------------------


def test_event_queue_has_a_dead_letter_queue_and_only_the_raw_bucket_may_send(
    modules: dict[str, Config],
) -> None:
    events = modules["events"]
    queue = events.resource("aws_sqs_queue", "events")
    assert "deadLetterTargetArn = aws_sqs_queue.dead_letter.arn" in queue["redrive_policy"]
    assert "maxReceiveCount" in queue["redrive_policy"]
    allow = events.resource("aws_sqs_queue_redrive_allow_policy", "dead_letter")["redrive_allow_policy"]
    assert "byQueue" in allow and "aws_sqs_queue.events.arn" in allow
    statement = one(events.statements("events"))
    assert statement["actions"] == ["sqs:SendMessage"]
    assert principals(statement) == {"s3.amazonaws.com"}
    assert conditions(statement)["aws:SourceArn"] == ("ArnEquals", ["${var.raw_bucket_arn}"])
    assert conditions(statement)["aws:SourceAccount"][0] == "StringEquals"
    assert events.outputs["queue_arn"]["depends_on"] == ["${aws_sqs_queue_policy.events}"]


def test_every_queue_and_topic_is_kms_encrypted(every_config: list[Config]) -> None:
    queues = [
        (c.path.name, n, b) for c in every_config for n, b in c.resources.get("aws_sqs_queue", {}).items()
    ]
    assert len(queues) == 3
    for folder, name, body in queues:
        assert body.get("kms_master_key_id") == "${var.kms_key_arn}", f"{folder}: queue {name}"
    topics = [b for c in every_config for b in c.resources.get("aws_sns_topic", {}).values()]
    assert topics and all(t.get("kms_master_key_id") == "${var.kms_key_arn}" for t in topics)


# --- the transform Lambda ------------------------------------------------------------------------------


def test_lambda_is_arm64_python312_from_s3_with_limits_tracing_and_encryption(
    modules: dict[str, Config],
) -> None:
    function = modules["transform_lambda"].resource("aws_lambda_function", "this")
    assert function["runtime"] == "python3.12"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "handler.handler"
    assert function["s3_bucket"] == "${var.artifact_bucket}" and function["s3_key"] == "${var.artifact_key}"
    assert "filename" not in function and "image_uri" not in function
    assert function["reserved_concurrent_executions"] == "${var.reserved_concurrency}"
    assert one(function["tracing_config"])["mode"] == "Active"
    assert function["kms_key_arn"] == "${var.kms_key_arn}"
    assert function["code_signing_config_arn"] == "${aws_lambda_code_signing_config.this.arn}"
    assert one(function["logging_config"])["log_group"] == "${aws_cloudwatch_log_group.this.name}"
    concurrency = modules["transform_lambda"].variables["reserved_concurrency"]
    assert ">= 1" in one(concurrency["validation"])["condition"]


def test_lambda_failures_go_to_an_on_failure_destination(modules: dict[str, Config]) -> None:
    config = modules["transform_lambda"].resource("aws_lambda_function_event_invoke_config", "this")
    assert config["function_name"] == "${aws_lambda_function.this.function_name}"
    on_failure = one(one(config["destination_config"])["on_failure"])
    assert on_failure["destination"] == "${aws_sqs_queue.failures.arn}"


def test_lambda_role_s3_access_is_scoped_to_feed_prefixes(modules: dict[str, Config]) -> None:
    statements = modules["transform_lambda"].statements("this")
    allowed_buckets = {"raw", "processed", "quarantine"}
    for statement in statements:
        assert "*" not in statement["actions"] and "s3:*" not in statement["actions"], statement["sid"]
        if "*" in as_list(statement["resources"]):
            assert all(a.startswith("xray:") for a in statement["actions"]), (
                f"{statement['sid']}: '*' resource"
            )
    for statement in s3_statements(statements):
        resources = " ".join(as_list(statement["resources"]))
        buckets = set(re.findall(r"var\.(\w+)_bucket_arn", resources))
        assert buckets and buckets <= allowed_buckets, statement["sid"]
        assert not re.search(r"_bucket_arn\}/\*", resources), f"{statement['sid']}: a whole bucket's objects"
        object_actions = [a for a in statement["actions"] if a != "s3:ListBucket"]
        if object_actions:
            assert re.search(r"_bucket_arn\}/\$\{(prefix|folder)\}\*", resources), statement["sid"]
        else:
            assert conditions(statement)["s3:prefix"][0] == "StringLike", "listing is limited to the prefixes"
    actions = {a: s for s in s3_statements(statements) for a in s["actions"]}
    assert "s3:DeleteObject" not in actions
    assert set(re.findall(r"var\.(\w+)_bucket_arn", str(actions["s3:GetObject"]["resources"]))) == {"raw"}
    assert set(re.findall(r"var\.(\w+)_bucket_arn", str(actions["s3:PutObject"]["resources"]))) == {
        "processed",
        "quarantine",
    }


def test_lambda_role_kms_and_logs_are_scoped(modules: dict[str, Config]) -> None:
    by_sid = {s["sid"]: s for s in modules["transform_lambda"].statements("this")}
    kms = [s for s in by_sid.values() if any(a.startswith("kms:") for a in s["actions"])]
    assert one(kms)["resources"] == ["${var.kms_key_arn}"]
    logs = [s for s in by_sid.values() if any(a.startswith("logs:") for a in s["actions"])]
    assert one(logs)["resources"] == ["${aws_cloudwatch_log_group.this.arn}:*"]
    assert "logs:CreateLogGroup" not in one(logs)["actions"]


# --- the warehouse -------------------------------------------------------------------------------------


def test_redshift_workgroup_is_private_in_the_given_subnets(modules: dict[str, Config]) -> None:
    warehouse = modules["warehouse"]
    workgroup = warehouse.resource("aws_redshiftserverless_workgroup", "this")
    assert workgroup["publicly_accessible"] is False
    assert workgroup["enhanced_vpc_routing"] is True
    assert workgroup["subnet_ids"] == "${var.subnet_ids}"
    assert workgroup["security_group_ids"] == ["${aws_security_group.this.id}"]
    parameters = {p["parameter_key"]: p["parameter_value"] for p in workgroup["config_parameter"]}
    assert parameters["require_ssl"] == "true"
    assert ">= 3" in one(warehouse.variables["subnet_ids"]["validation"])["condition"]


def test_redshift_security_group_has_no_open_ingress(modules: dict[str, Config]) -> None:
    warehouse = modules["warehouse"]
    assert "ingress" not in warehouse.resource("aws_security_group", "this")
    rules = warehouse.resources["aws_vpc_security_group_ingress_rule"]
    for name, rule in rules.items():
        assert rule["from_port"] == rule["to_port"] == "${var.port}", name
        assert "0.0.0.0/0" not in str(rule) and "::/0" not in str(rule), name
        assert "cidr_ipv6" not in rule, name
    assert rules["from_cidr_blocks"]["for_each"] == "${toset(var.allowed_cidr_blocks)}"
    assert (
        'endswith(cidr, "/0")' in one(warehouse.variables["allowed_cidr_blocks"]["validation"])["condition"]
    )
    egress = warehouse.resources["aws_vpc_security_group_egress_rule"]
    assert (
        list(egress) == ["to_s3"]
        and "prefix_list_id" in egress["to_s3"]
        and "cidr_ipv4" not in egress["to_s3"]
    )


def test_redshift_namespace_is_encrypted_with_a_managed_secret_and_the_copy_role(
    modules: dict[str, Config],
) -> None:
    namespace = modules["warehouse"].resource("aws_redshiftserverless_namespace", "this")
    assert namespace["manage_admin_password"] is True
    assert "admin_user_password" not in namespace
    assert namespace["kms_key_id"] == namespace["admin_password_secret_kms_key_id"] == "${var.kms_key_arn}"
    assert namespace["iam_roles"] == ["${aws_iam_role.copy.arn}"]
    assert namespace["default_iam_role_arn"] == "${aws_iam_role.copy.arn}"


def test_copy_role_only_reads_the_processed_bucket(modules: dict[str, Config]) -> None:
    warehouse = modules["warehouse"]
    statements = warehouse.statements("copy")
    actions = {a for s in statements for a in s["actions"]}
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "kms:Decrypt"}
    for statement in s3_statements(statements):
        assert {r.split("}")[0] for r in as_list(statement["resources"])} == {"${var.processed_bucket_arn"}
    trust = one(warehouse.statements("copy_assume"))
    assert principals(trust) == {"redshift.amazonaws.com", "redshift-serverless.amazonaws.com"}
    assert "aws:SourceAccount" in conditions(trust)
    assert warehouse.resource("aws_iam_role_policy", "copy")["role"] == "${aws_iam_role.copy.id}"


# --- logs and alarms -----------------------------------------------------------------------------------


def test_every_log_group_has_retention_and_kms(every_config: list[Config]) -> None:
    groups = [
        (c, n, b) for c in every_config for n, b in c.resources.get("aws_cloudwatch_log_group", {}).items()
    ]
    assert len(groups) == 2
    for config, name, body in groups:
        assert body["retention_in_days"] == "${var.log_retention_days}", name
        assert body["kms_key_id"] == "${var.kms_key_arn}", name
        assert config.variables["log_retention_days"]["default"] >= 365


def test_alarms_cover_lambda_dead_letters_backlog_and_redshift(modules: dict[str, Config]) -> None:
    monitoring = modules["monitoring"]
    alarms = monitoring.resources["aws_cloudwatch_metric_alarm"]
    metrics = {(a["namespace"], a["metric_name"]) for a in alarms.values()}
    assert metrics == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Redshift-Serverless", "ComputeCapacity"),
    }
    for name, alarm in alarms.items():
        assert alarm["actions_enabled"] is True and alarm["alarm_actions"] == "${local.alarm_actions}", name
    assert monitoring.locals["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    assert alarms["dead_letter_messages"]["for_each"] == "${var.dead_letter_queue_names}"


# --- the example environment and hygiene ---------------------------------------------------------------


def test_example_wires_every_module_with_a_pinned_provider_and_default_tags(example: Config) -> None:
    assert {m["source"] for m in example.modules.values()} == {f"../../modules/{m}" for m in MODULES}
    providers = one(one(example.terraform)["required_providers"])
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> [56]\.\d+", providers["aws"]["version"])
    aws = example.providers["aws"]
    assert aws["region"] == "${var.region}"
    assert "tags" in one(aws["default_tags"])
    dead_letters = example.modules["monitoring"]["dead_letter_queue_names"]
    assert set(dead_letters.values()) == {
        "${module.events.dead_letter_queue_name}",
        "${module.transform_lambda.failure_queue_name}",
    }


def test_example_outputs_what_airflow_and_feedline_need(example: Config) -> None:
    needed = {
        "raw_bucket", "processed_bucket", "quarantine_bucket", "archive_bucket", "artifacts_bucket",
        "feed_sources", "lake_uris", "events_queue_url", "events_queue_arn", "lambda_function_name",
        "lambda_function_arn", "redshift_endpoint", "redshift_port", "redshift_database", "redshift_dsn",
        "redshift_copy_role_arn", "redshift_admin_secret_arn", "alarm_topic_arn", "airflow_policy_arn",
    }  # fmt: skip
    assert needed <= set(example.outputs)


def test_docs_map_every_example_output(example: Config) -> None:
    docs = (TERRAFORM.parents[1] / "docs" / "aws.md").read_text(encoding="utf-8")
    missing = [name for name in example.outputs if f"`{name}`" not in docs]
    assert not missing, f"docs/aws.md does not mention these outputs: {missing}"


def test_tfvars_example_sets_every_required_variable_and_nothing_unknown(example: Config) -> None:
    values = parse(TERRAFORM / "environments" / "example" / "terraform.tfvars.example")
    required = {name for name, body in example.variables.items() if "default" not in body}
    assert required <= set(values), f"missing: {required - set(values)}"
    assert set(values) <= set(example.variables), f"unknown: {set(values) - set(example.variables)}"


def test_variables_and_outputs_are_typed_and_described(every_config: list[Config]) -> None:
    for config in every_config:
        for name, body in config.variables.items():
            assert body.get("description") and body.get("type"), f"{config.path.name}: variable {name}"
        for name, body in config.outputs.items():
            assert body.get("description"), f"{config.path.name}: output {name}"


def test_no_account_ids_regions_or_secrets_are_hard_coded() -> None:
    for path in sorted(TERRAFORM.rglob("*.tf")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w-])\d{12}(?![\w-])", text), f"{path}: an account id"
        assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), f"{path}: a region"
        assert not re.search(r"(password|secret_key|access_key)\s*=\s*\"", text), f"{path}: a secret"


def test_every_checkov_skip_is_justified() -> None:
    skips = [
        (path, line.strip())
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if "checkov:skip" in line
    ]
    assert skips, "the known exceptions carry skips"
    for path, line in skips:
        match = re.fullmatch(r"#checkov:skip=(CKV2?_AWS_\d+):(.+)", line)
        assert match, f"{path}: malformed skip {line!r}"
        assert len(match.group(2).split()) >= 8, f"{path}: {match.group(1)} needs a real justification"
