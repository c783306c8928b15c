variable "name_prefix" {
  description = "Prefix of the queue names, e.g. \"feedline-prod\"."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts both queues (its key policy must let s3.amazonaws.com use it)."
  type        = string
}

variable "raw_bucket_arn" {
  description = "ARN of the raw bucket, the only source allowed to send events to the queue."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "How long a received event stays hidden. The Airflow SQS trigger deletes an event as soon as it receives it, so this only has to cover receive-to-delete; an event the trigger does not delete (filtered out, triggerer crash) comes back after it and counts one receive towards max_receive_count."
  type        = number
  default     = 120

  validation {
    condition     = var.visibility_timeout_seconds >= 30 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 30 and 43200 (12 hours)."
  }
}

variable "max_receive_count" {
  description = "Receives after which an undeleted event moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "How long an event waits in the queue; the feeds' fallback sweep picks up anything older."
  type        = number
  default     = 345600
}

variable "dead_letter_retention_seconds" {
  description = "How long an event is kept in the dead-letter queue (the SQS maximum, 14 days, by default)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dead_letter_retention_seconds >= 60 && var.dead_letter_retention_seconds <= 1209600
    error_message = "dead_letter_retention_seconds must be between 60 and 1209600."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait of a receive call (0-20 s)."
  type        = number
  default     = 20
}
