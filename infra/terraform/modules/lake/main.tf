# The data lake: one customer-managed KMS key, five data buckets hardened alike, an access-log bucket,
# and the raw bucket's object-created events sent to SQS.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Per-bucket lifecycle: a null expiration keeps current objects until feedline moves or deletes them.
  buckets = {
    raw = {
      expiration_days = null
      transitions     = []
    }
    processed = {
      expiration_days = var.processed_expiration_days
      transitions     = []
    }
    quarantine = {
      expiration_days = var.quarantine_expiration_days
      transitions     = []
    }
    archive = {
      expiration_days = var.archive_expiration_days
      transitions = [
        { days = var.archive_ia_after_days, storage_class = "STANDARD_IA" },
        { days = var.archive_glacier_after_days, storage_class = "GLACIER" },
      ]
    }
    artifacts = {
      expiration_days = null
      transitions     = []
    }
  }

  bucket_names     = { for name, _ in local.buckets : name => "${var.name_prefix}-${name}-${local.account_id}" }
  access_logs_name = "${var.name_prefix}-access-logs-${local.account_id}"
}

# The data buckets: raw (landing), processed (Parquet for COPY), quarantine, archive, artifacts (the
# Lambda zip), each with every resource below.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV2_AWS_62:Only raw is an event source (aws_s3_bucket_notification.raw); feedline itself writes the other buckets and needs no events from them.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a per-deployment disaster-recovery decision (it needs a second region and key); every bucket is versioned and the archive keeps the raw files.
  for_each = local.buckets

  bucket = local.bucket_names[each.key]
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Writers may omit the encryption headers (default encryption applies) but may not ask for another
  # algorithm or another key.
  statement {
    sid       = "DenyPutsNotEncryptedWithKms"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  # SSE-KMS asked for without a key id would use the AWS-managed aws/s3 key instead of this one.
  statement {
    sid       = "DenyKmsPutsWithoutAKeyId"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DenyPutsWithAnotherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.this.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    dynamic "transition" {
      for_each = local.buckets[each.key].transitions

      content {
        days          = transition.value.days
        storage_class = transition.value.storage_class
      }
    }

    dynamic "expiration" {
      for_each = local.buckets[each.key].expiration_days == null ? [] : [local.buckets[each.key].expiration_days]

      content {
        days = expiration.value
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.archive_glacier_after_days > var.archive_ia_after_days && var.archive_expiration_days > var.archive_glacier_after_days
      error_message = "The archive must move to Standard-IA, then to Glacier, then expire: need archive_ia_after_days < archive_glacier_after_days < archive_expiration_days."
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each = local.buckets

  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"

  depends_on = [aws_s3_bucket_policy.access_logs]
}

# Object-created events of the feed prefixes wake the feeds' DAGs (AssetWatcher on the SQS trigger).
resource "aws_s3_bucket_notification" "raw" {
  bucket = aws_s3_bucket.this["raw"].id

  dynamic "queue" {
    for_each = toset(var.feed_prefixes)

    content {
      id            = "feed-${trimsuffix(replace(queue.value, "/", "-"), "-")}"
      queue_arn     = var.event_queue_arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = queue.value
    }
  }
}
