variable "region" {
  description = "AWS region of every resource."
  type        = string
}

variable "project" {
  description = "Project name: first part of every resource name and the Project tag."
  type        = string
  default     = "feedline"
}

variable "environment" {
  description = "Environment name (e.g. \"dev\", \"prod\"): second part of every resource name and the Environment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{2,12}$", var.environment))
    error_message = "environment must be 2-12 lowercase letters or digits."
  }
}

variable "tags" {
  description = "Extra tags put on every resource (through the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "feeds" {
  description = "Feed name (as in feeds/<name>.yaml) => its prefix in the raw bucket, ending with \"/\"; the feed's source is s3://<raw bucket>/<prefix>."
  type        = map(string)
}

variable "lambda_artifact_bucket" {
  description = "Bucket of the Lambda zip; null uses the lake's artifacts bucket."
  type        = string
  default     = null
}

variable "lambda_artifact_key" {
  description = "Key of the arm64 zip from `make lambda-package` in the artifacts bucket, e.g. \"transform/feedline-transform-<git sha>.zip\"."
  type        = string
}

variable "lambda_artifact_object_version" {
  description = "Version id of the zip object, to redeploy a zip uploaded again under the same key."
  type        = string
  default     = null
}

variable "lambda_memory_size" {
  description = "Memory of the transform function in MB."
  type        = number
  default     = 2048
}

variable "lambda_timeout" {
  description = "Timeout of the transform function in seconds."
  type        = number
  default     = 900
}

variable "lambda_reserved_concurrency" {
  description = "Most transforms running at once."
  type        = number
  default     = 10
}

variable "lambda_code_signing_policy" {
  description = "\"Warn\" deploys unsigned zips with a warning; \"Enforce\" accepts only zips signed with the transform's signing profile."
  type        = string
  default     = "Warn"
}

variable "log_retention_days" {
  description = "Retention in days of the log groups (the transform's, Redshift's audit logs)."
  type        = number
  default     = 365
}

variable "vpc_id" {
  description = "VPC of the Redshift Serverless workgroup."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the workgroup: at least three, in three Availability Zones."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 3
    error_message = "private_subnet_ids needs at least three private subnets spanning three Availability Zones (Redshift Serverless requires it)."
  }
}

variable "private_route_table_ids" {
  description = "Route tables of the private subnets (for the S3 gateway endpoint)."
  type        = list(string)
  default     = []
}

variable "create_s3_gateway_endpoint" {
  description = "Create an S3 gateway endpoint in the VPC (COPY with enhanced VPC routing needs one, or a NAT)."
  type        = bool
  default     = false
}

variable "redshift_allowed_security_group_ids" {
  description = "Security groups allowed to reach Redshift (the Airflow workers', MWAA's)."
  type        = list(string)
  default     = []
}

variable "redshift_allowed_cidr_blocks" {
  description = "Private CIDR blocks allowed to reach Redshift (never 0.0.0.0/0)."
  type        = list(string)
  default     = []
}

variable "redshift_database_name" {
  description = "Database of the warehouse."
  type        = string
  default     = "feedline"
}

variable "redshift_base_capacity" {
  description = "Base RPUs of the workgroup."
  type        = number
  default     = 8
}

variable "redshift_max_capacity" {
  description = "Most RPUs of the workgroup; sustained use of it raises the compute alarm."
  type        = number
  default     = 32
}

variable "lambda_errors_threshold" {
  description = "Failed transform invocations in 5 minutes above which the errors alarm fires (bad files fail the transform too)."
  type        = number
  default     = 0
}

variable "alarm_email_addresses" {
  description = "E-mail addresses that receive the alarms."
  type        = list(string)
  default     = []
}

variable "airflow_role_name" {
  description = "Name of the IAM role Airflow runs as (MWAA execution role, or the workers' instance/pod role) to attach the feedline policy to; null leaves attaching it to you."
  type        = string
  default     = null
}
