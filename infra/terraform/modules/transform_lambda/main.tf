# The transform Lambda: CSV in the raw bucket -> clean Parquet in processed, rejected rows in quarantine.

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# Failed asynchronous invocations land here with their request and error.
resource "aws_sqs_queue" "failures" {
  name                              = "${var.function_name}-failures"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = 1209600
}

resource "aws_signer_signing_profile" "this" {
  name_prefix = substr(replace(var.function_name, "/[^A-Za-z0-9_]/", "_"), 0, 38)
  platform_id = "AWSLambda-SHA384-ECDSA"
}

resource "aws_lambda_code_signing_config" "this" {
  description = "Zips of ${var.function_name} signed by its signing profile"

  allowed_publishers {
    signing_profile_version_arns = [aws_signer_signing_profile.this.version_arn]
  }

  policies {
    untrusted_artifact_on_deployment = var.code_signing_policy
  }
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to an on-failure destination (aws_lambda_function_event_invoke_config.this), which records the request and the error; a DLQ as well would deliver each failure twice.
  #checkov:skip=CKV_AWS_117:The function reaches only S3, KMS, SQS and X-Ray over IAM-authorized TLS endpoints; a VPC attachment would add ENI cold starts and a NAT or four interface endpoints without narrowing what it can reach.
  function_name = var.function_name
  description   = "feedline transform: CSV -> clean Parquet + rejected rows"
  role          = aws_iam_role.this.arn

  runtime       = "python3.12"
  architectures = ["arm64"]
  handler       = "handler.handler"

  s3_bucket         = var.artifact_bucket
  s3_key            = var.artifact_key
  s3_object_version = var.artifact_object_version

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  code_signing_config_arn        = aws_lambda_code_signing_config.this.arn
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  environment {
    variables = merge({ FEEDLINE_PROFILE = "aws" }, var.environment_variables)
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = var.application_log_level
    system_log_level      = "WARN"
  }

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failures.arn
    }
  }
}
