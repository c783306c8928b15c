# The KMS key shared by the lake, the queues, the Lambda, the logs, the alarm topic and the warehouse.

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:In a key policy Resource "*" is this key only; the account-root statement is AWS's default that delegates key administration to IAM policies.
  #checkov:skip=CKV_AWS_111:In a key policy Resource "*" is this key only; write actions are limited to this account's root (IAM-governed) and to service principals under aws:SourceAccount / encryption-context conditions.
  #checkov:skip=CKV_AWS_356:A key policy can only name its own key, which it does with Resource "*".
  statement {
    sid       = "AccountRootManagesKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "S3AndCloudWatchPublishToEncryptedQueuesAndTopics"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com", "cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "feedline ${var.name_prefix}: lake objects, queues, Lambda environment, logs, alarms, warehouse"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}
