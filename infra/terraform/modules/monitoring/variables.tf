variable "name_prefix" {
  description = "Prefix of the topic and alarm names, e.g. \"feedline-prod\"."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the alarm topic (its key policy must let cloudwatch.amazonaws.com use it)."
  type        = string
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "lambda_function_name" {
  description = "Name of the transform function whose errors and throttles raise alarms."
  type        = string
}

variable "lambda_errors_threshold" {
  description = "Failed invocations in 5 minutes above which the errors alarm fires."
  type        = number
  default     = 0
}

variable "events_queue_name" {
  description = "Name of the raw-events queue whose oldest message age raises an alarm."
  type        = string
}

variable "oldest_message_age_threshold_seconds" {
  description = "Age of the oldest waiting event above which the backlog alarm fires: events older than a few trigger polls mean the triggerer is not consuming."
  type        = number
  default     = 900
}

variable "dead_letter_queue_names" {
  description = "Label => name of each dead-letter queue; any visible message raises an alarm."
  type        = map(string)
}

variable "redshift_workgroup_name" {
  description = "Name of the Redshift Serverless workgroup to watch; null for no compute alarm."
  type        = string
  default     = null
}

variable "redshift_compute_capacity_threshold" {
  description = "RPUs that, sustained for 15 minutes, raise the compute alarm (e.g. the workgroup's max capacity)."
  type        = number
  default     = 32
}
