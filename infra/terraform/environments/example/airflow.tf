# What Airflow itself may do on the AWS path, as one managed policy for its execution role: list and
# archive the feeds' raw files, manage the feeds' folders in the lake, consume the raw events, invoke the
# transform, get Redshift credentials, publish metrics and notifications.

locals {
  raw_prefixes = distinct(values(var.feeds))
  feed_folders = [for feed in keys(var.feeds) : "${feed}/"]
  lake_areas   = [for area in ["processed", "quarantine", "archive"] : module.lake.bucket_arns[area]]
}

data "aws_iam_policy_document" "airflow" {
  statement {
    sid       = "ListRawFeedPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arns["raw"]]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for prefix in local.raw_prefixes : "${prefix}*"]
    }
  }

  statement {
    sid       = "ReadAndArchiveRawFeedObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:DeleteObject"]
    resources = [for prefix in local.raw_prefixes : "${module.lake.bucket_arns["raw"]}/${prefix}*"]
  }

  statement {
    sid       = "ListFeedFolders"
    actions   = ["s3:ListBucket"]
    resources = local.lake_areas

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for folder in local.feed_folders : "${folder}*"]
    }
  }

  statement {
    sid     = "ManageFeedFolders"
    actions = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = flatten([
      for bucket in local.lake_areas : [for folder in local.feed_folders : "${bucket}/${folder}*"]
    ])
  }

  statement {
    sid       = "UseTheLakeKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.lake.kms_key_arn]
  }

  statement {
    sid = "ConsumeRawEvents"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [module.events.queue_arn]
  }

  statement {
    sid       = "InvokeTheTransform"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.transform_lambda.function_arn, "${module.transform_lambda.function_arn}:*"]
  }

  statement {
    sid       = "RedshiftIamCredentials"
    actions   = ["redshift-serverless:GetCredentials"]
    resources = [module.warehouse.workgroup_arn]
  }

  statement {
    sid       = "PublishNotifications"
    actions   = ["sns:Publish"]
    resources = [module.monitoring.topic_arn]
  }

  # PutMetricData has no resource-level permissions; the namespace condition scopes it.
  statement {
    sid       = "PublishFeedlineMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["feedline"]
    }
  }
}

resource "aws_iam_policy" "airflow" {
  name        = "${local.name_prefix}-airflow"
  description = "What the Airflow deployment running feedline (${local.name_prefix}) may do"
  policy      = data.aws_iam_policy_document.airflow.json
}

resource "aws_iam_role_policy_attachment" "airflow" {
  count = var.airflow_role_name == null ? 0 : 1

  role       = var.airflow_role_name
  policy_arn = aws_iam_policy.airflow.arn
}
