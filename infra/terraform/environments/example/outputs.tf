# What Airflow and feedline need; docs/aws.md maps each output to its connection field or setting.

output "raw_bucket" {
  description = "Raw (landing) bucket: feeds' sources are s3://<raw_bucket>/<prefix>."
  value       = module.lake.bucket_names["raw"]
}

output "processed_bucket" {
  description = "Processed bucket: clean Parquet, read by Redshift COPY."
  value       = module.lake.bucket_names["processed"]
}

output "quarantine_bucket" {
  description = "Quarantine bucket: rejected rows and bad files."
  value       = module.lake.bucket_names["quarantine"]
}

output "archive_bucket" {
  description = "Archive bucket: raw files after loading."
  value       = module.lake.bucket_names["archive"]
}

output "artifacts_bucket" {
  description = "Bucket to upload the Lambda zip to."
  value       = module.lake.bucket_names["artifacts"]
}

output "feed_sources" {
  description = "Feed name => the source URI to put in feeds/<name>.yaml."
  value       = { for feed, prefix in var.feeds : feed => "s3://${module.lake.bucket_names["raw"]}/${prefix}" }
}

output "lake_uris" {
  description = "Root URI of each lake area (processed, quarantine, archive) for feedline's settings."
  value       = { for area in ["processed", "quarantine", "archive"] : area => "s3://${module.lake.bucket_names[area]}" }
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the lake, the queues, the logs and the warehouse."
  value       = module.lake.kms_key_arn
}

output "events_queue_url" {
  description = "URL of the raw-events queue: the SQS trigger's queue (feedline's sqs_queue setting)."
  value       = module.events.queue_url
}

output "events_queue_arn" {
  description = "ARN of the raw-events queue."
  value       = module.events.queue_arn
}

output "events_dead_letter_queue_url" {
  description = "URL of the raw-events dead-letter queue."
  value       = module.events.dead_letter_queue_url
}

output "lambda_function_name" {
  description = "Name of the transform function (feedline's lambda_function setting)."
  value       = module.transform_lambda.function_name
}

output "lambda_function_arn" {
  description = "ARN of the transform function."
  value       = module.transform_lambda.function_arn
}

output "lambda_signing_profile_name" {
  description = "AWS Signer profile to sign the Lambda zip with (for lambda_code_signing_policy = \"Enforce\")."
  value       = module.transform_lambda.signing_profile_name
}

output "redshift_endpoint" {
  description = "Host of the Redshift Serverless endpoint (the Redshift connection's host)."
  value       = module.warehouse.endpoint_address
}

output "redshift_port" {
  description = "Port of the Redshift Serverless endpoint (the Redshift connection's port)."
  value       = module.warehouse.endpoint_port
}

output "redshift_database" {
  description = "Database of the warehouse (the Redshift connection's schema/database)."
  value       = module.warehouse.database_name
}

output "redshift_workgroup_name" {
  description = "Name of the Redshift Serverless workgroup (for IAM authentication)."
  value       = module.warehouse.workgroup_name
}

output "redshift_dsn" {
  description = "The warehouse DSN without credentials (FEEDLINE_WAREHOUSE)."
  value       = "redshift://${module.warehouse.endpoint_address}:${module.warehouse.endpoint_port}/${module.warehouse.database_name}"
}

output "redshift_copy_role_arn" {
  description = "Role for `COPY ... IAM_ROLE` (the namespace's default role)."
  value       = module.warehouse.copy_role_arn
}

output "redshift_admin_secret_arn" {
  description = "Secrets Manager secret with the Redshift admin user name and password."
  value       = module.warehouse.admin_secret_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms (and of feedline's notifications, if wanted)."
  value       = module.monitoring.topic_arn
}

output "airflow_policy_arn" {
  description = "Managed policy to attach to the role Airflow runs as."
  value       = aws_iam_policy.airflow.arn
}
