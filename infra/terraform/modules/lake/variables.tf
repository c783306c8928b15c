variable "name_prefix" {
  description = "Prefix of every bucket and key name, e.g. \"feedline-prod\"; bucket names end with the account id to be globally unique."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or hyphens (it becomes part of S3 bucket names)."
  }
}

variable "feed_prefixes" {
  description = "Key prefixes in the raw bucket that hold feeds, one per feed, each ending with \"/\" (e.g. \"orders/\"). Objects created under them are sent to the event queue."
  type        = list(string)

  validation {
    condition     = length(var.feed_prefixes) > 0 && alltrue([for p in var.feed_prefixes : endswith(p, "/") && !startswith(p, "/")])
    error_message = "feed_prefixes needs at least one prefix; each ends with \"/\" and does not start with one."
  }
}

variable "event_queue_arn" {
  description = "ARN of the SQS queue that receives the raw bucket's object-created events (the events module's queue_arn output, which waits for the queue policy)."
  type        = string
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the data key is deleted after `terraform destroy`."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which unfinished multipart uploads are aborted in every bucket."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiration_days" {
  description = "Days a noncurrent (overwritten or deleted) object version is kept in every bucket."
  type        = number
  default     = 30
}

variable "processed_expiration_days" {
  description = "Days a Parquet object stays in the processed bucket; it is only needed until the COPY (replay re-transforms from the archive)."
  type        = number
  default     = 30
}

variable "quarantine_expiration_days" {
  description = "Days rejected rows and quarantined files are kept for inspection and `feedline replay`."
  type        = number
  default     = 90
}

variable "archive_ia_after_days" {
  description = "Days after which archived raw files move to S3 Standard-IA (at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_ia_after_days >= 30
    error_message = "archive_ia_after_days must be at least 30 (the Standard-IA minimum)."
  }
}

variable "archive_glacier_after_days" {
  description = "Days after which archived raw files move to S3 Glacier Flexible Retrieval."
  type        = number
  default     = 90
}

variable "archive_expiration_days" {
  description = "Days after which archived raw files are deleted."
  type        = number
  default     = 2555

  validation {
    condition     = var.archive_expiration_days > 0
    error_message = "archive_expiration_days must be positive."
  }
}

variable "access_log_expiration_days" {
  description = "Days S3 server access logs are kept in the access-log bucket."
  type        = number
  default     = 365
}
