# The role Redshift assumes for `COPY ... IAM_ROLE`: read the processed bucket, decrypt with the lake key.

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "copy_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "copy" {
  name               = "${var.name_prefix}-redshift-copy"
  description        = "Assumed by Redshift Serverless to COPY Parquet from the processed bucket"
  assume_role_policy = data.aws_iam_policy_document.copy_assume.json
}

data "aws_iam_policy_document" "copy" {
  statement {
    sid       = "ListProcessedBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.processed_bucket_arn]
  }

  statement {
    sid       = "ReadProcessedObjects"
    actions   = ["s3:GetObject"]
    resources = ["${var.processed_bucket_arn}/*"]
  }

  statement {
    sid       = "DecryptWithTheLakeKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "copy" {
  name   = "copy-from-processed"
  role   = aws_iam_role.copy.id
  policy = data.aws_iam_policy_document.copy.json
}
