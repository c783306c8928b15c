output "kms_key_arn" {
  description = "ARN of the customer-managed KMS key used by every encrypted resource."
  value       = aws_kms_key.this.arn
}

output "kms_key_alias" {
  description = "Alias of the KMS key."
  value       = aws_kms_alias.this.name
}

output "bucket_names" {
  description = "Bucket name per role: raw, processed, quarantine, archive, artifacts."
  value       = { for name, bucket in aws_s3_bucket.this : name => bucket.bucket }
}

output "bucket_arns" {
  description = "Bucket ARN per role: raw, processed, quarantine, archive, artifacts."
  value       = { for name, bucket in aws_s3_bucket.this : name => bucket.arn }
}

output "access_logs_bucket_name" {
  description = "Bucket holding the S3 server access logs of the lake buckets."
  value       = aws_s3_bucket.access_logs.bucket
}
