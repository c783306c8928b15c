# Example environment: the whole AWS path of feedline wired together. Copy this folder per environment.

locals {
  name_prefix     = "${var.project}-${var.environment}"
  artifact_bucket = coalesce(var.lambda_artifact_bucket, module.lake.bucket_names["artifacts"])
}

module "lake" {
  source = "../../modules/lake"

  name_prefix     = local.name_prefix
  feed_prefixes   = distinct(values(var.feeds))
  event_queue_arn = module.events.queue_arn
}

module "events" {
  source = "../../modules/events"

  name_prefix    = local.name_prefix
  kms_key_arn    = module.lake.kms_key_arn
  raw_bucket_arn = module.lake.bucket_arns["raw"]
}

module "transform_lambda" {
  source = "../../modules/transform_lambda"

  function_name           = "${local.name_prefix}-transform"
  artifact_bucket         = local.artifact_bucket
  artifact_key            = var.lambda_artifact_key
  artifact_object_version = var.lambda_artifact_object_version
  memory_size             = var.lambda_memory_size
  timeout                 = var.lambda_timeout
  reserved_concurrency    = var.lambda_reserved_concurrency
  code_signing_policy     = var.lambda_code_signing_policy
  log_retention_days      = var.log_retention_days

  kms_key_arn           = module.lake.kms_key_arn
  raw_bucket_arn        = module.lake.bucket_arns["raw"]
  processed_bucket_arn  = module.lake.bucket_arns["processed"]
  quarantine_bucket_arn = module.lake.bucket_arns["quarantine"]
  feeds                 = var.feeds
}

module "warehouse" {
  source = "../../modules/warehouse"

  name_prefix                = local.name_prefix
  database_name              = var.redshift_database_name
  log_retention_days         = var.log_retention_days
  kms_key_arn                = module.lake.kms_key_arn
  processed_bucket_arn       = module.lake.bucket_arns["processed"]
  vpc_id                     = var.vpc_id
  subnet_ids                 = var.private_subnet_ids
  allowed_security_group_ids = var.redshift_allowed_security_group_ids
  allowed_cidr_blocks        = var.redshift_allowed_cidr_blocks
  create_s3_gateway_endpoint = var.create_s3_gateway_endpoint
  route_table_ids            = var.private_route_table_ids
  base_capacity              = var.redshift_base_capacity
  max_capacity               = var.redshift_max_capacity
}

module "monitoring" {
  source = "../../modules/monitoring"

  name_prefix             = local.name_prefix
  kms_key_arn             = module.lake.kms_key_arn
  alarm_email_addresses   = var.alarm_email_addresses
  lambda_function_name    = module.transform_lambda.function_name
  lambda_errors_threshold = var.lambda_errors_threshold
  events_queue_name       = module.events.queue_name

  dead_letter_queue_names = {
    raw-events         = module.events.dead_letter_queue_name
    transform-failures = module.transform_lambda.failure_queue_name
  }

  redshift_workgroup_name             = module.warehouse.workgroup_name
  redshift_compute_capacity_threshold = var.redshift_max_capacity
}
