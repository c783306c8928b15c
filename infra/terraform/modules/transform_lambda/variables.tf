variable "function_name" {
  description = "Name of the transform function, e.g. \"feedline-prod-transform\"."
  type        = string
}

variable "artifact_bucket" {
  description = "Bucket holding the deployment zip built by `make lambda-package` (zips over 50 MB must deploy from S3)."
  type        = string
}

variable "artifact_key" {
  description = "Key of the arm64 deployment zip in artifact_bucket; give each build its own key (e.g. with the git revision) so that a new key redeploys."
  type        = string
}

variable "artifact_object_version" {
  description = "Version id of the zip object; set it to redeploy a zip uploaded again under the same key."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory of the function in MB; CPU scales with it (the streaming transform peaks near 1 GB on a 1 GB file)."
  type        = number
  default     = 2048

  validation {
    condition     = var.memory_size >= 512 && var.memory_size <= 10240
    error_message = "memory_size must be between 512 and 10240 MB."
  }
}

variable "timeout" {
  description = "Function timeout in seconds; the Airflow side invokes with a read timeout above it."
  type        = number
  default     = 900

  validation {
    condition     = var.timeout >= 30 && var.timeout <= 900
    error_message = "timeout must be between 30 and 900 seconds."
  }
}

variable "ephemeral_storage_mb" {
  description = "Size of /tmp in MB: the raw file is downloaded and both Parquet outputs are written there."
  type        = number
  default     = 4096

  validation {
    condition     = var.ephemeral_storage_mb >= 512 && var.ephemeral_storage_mb <= 10240
    error_message = "ephemeral_storage_mb must be between 512 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions: the most files transformed at once, which also caps the load on the account's concurrency pool."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1 (0 would disable the function)."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group in days."
  type        = number
  default     = 365
}

variable "application_log_level" {
  description = "Lambda application log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.application_log_level)
    error_message = "application_log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key of the lake; it encrypts the environment, the log group and the failure queue, and the function needs it to read and write lake objects."
  type        = string
}

variable "raw_bucket_arn" {
  description = "ARN of the raw bucket; the function reads only the feeds' prefixes in it."
  type        = string
}

variable "processed_bucket_arn" {
  description = "ARN of the processed bucket; the function writes only under the feeds' folders in it."
  type        = string
}

variable "quarantine_bucket_arn" {
  description = "ARN of the quarantine bucket; the function writes only under the feeds' folders in it."
  type        = string
}

variable "feeds" {
  description = "Feed name => its prefix in the raw bucket (ending with \"/\"). The function reads raw/<prefix> and writes processed/<feed>/ and quarantine/<feed>/."
  type        = map(string)

  validation {
    condition     = length(var.feeds) > 0 && alltrue([for p in values(var.feeds) : endswith(p, "/") && !startswith(p, "/")])
    error_message = "feeds needs at least one feed; each raw prefix ends with \"/\" and does not start with one."
  }
}

variable "environment_variables" {
  description = "Extra environment variables of the function (no secrets: they are visible to anyone who can read the function's configuration)."
  type        = map(string)
  default     = {}
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation before it goes to the on-failure destination (Airflow invokes synchronously and retries itself)."
  type        = number
  default     = 2
}

variable "maximum_event_age_seconds" {
  description = "Age after which an asynchronous invocation is not retried but sent to the on-failure destination."
  type        = number
  default     = 3600
}

variable "code_signing_policy" {
  description = "What Lambda does with a zip not signed by this module's signing profile: \"Warn\" deploys it and logs a warning, \"Enforce\" rejects it (sign the zip with the signing_profile_name output first)."
  type        = string
  default     = "Warn"

  validation {
    condition     = contains(["Warn", "Enforce"], var.code_signing_policy)
    error_message = "code_signing_policy must be \"Warn\" or \"Enforce\"."
  }
}
