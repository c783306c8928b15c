# The function's role: read only the feeds' raw prefixes, write only the feeds' processed and quarantine
# folders, use only the lake key, write only its own log group and failure queue.

locals {
  raw_prefixes = distinct(values(var.feeds))
  feed_folders = [for feed in keys(var.feeds) : "${feed}/"]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.function_name}-role"
  description        = "Execution role of the ${var.function_name} Lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadRawFeedObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for prefix in local.raw_prefixes : "${var.raw_bucket_arn}/${prefix}*"]
  }

  statement {
    sid       = "ListRawFeedPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.raw_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for prefix in local.raw_prefixes : "${prefix}*"]
    }
  }

  statement {
    sid     = "WriteProcessedAndQuarantineFeedFolders"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = flatten([
      for folder in local.feed_folders : [
        "${var.processed_bucket_arn}/${folder}*",
        "${var.quarantine_bucket_arn}/${folder}*",
      ]
    ])
  }

  statement {
    sid       = "UseTheLakeKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "SendFailedInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures.arn]
  }

  # X-Ray has no resource-level permissions for these actions.
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "transform"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
