variable "name_prefix" {
  description = "Prefix of the namespace, workgroup, role and security group names, e.g. \"feedline-prod\"."
  type        = string
}

variable "database_name" {
  description = "Database created in the namespace; the database of feedline's Redshift connection."
  type        = string
  default     = "feedline"
}

variable "admin_username" {
  description = "Admin user of the namespace; its password is generated and kept in Secrets Manager by Redshift."
  type        = string
  default     = "feedline_admin"
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the namespace and its admin secret."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the audit log groups (connection, user, user activity) in days."
  type        = number
  default     = 365
}

variable "vpc_id" {
  description = "VPC of the workgroup."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the workgroup: at least three, spanning three Availability Zones (a Redshift Serverless requirement)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 3
    error_message = "subnet_ids needs at least three private subnets spanning three Availability Zones (Redshift Serverless requires it)."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on the Redshift port (e.g. the Airflow workers' or MWAA's)."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "Private IPv4 ranges allowed to connect on the Redshift port (e.g. a VPN); never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrhost(cidr, 0)) && !strcontains(cidr, ":") && !endswith(cidr, "/0")])
    error_message = "allowed_cidr_blocks must be valid IPv4 CIDR blocks and none may be open to the world (/0)."
  }
}

variable "port" {
  description = "Port of the workgroup endpoint."
  type        = number
  default     = 5439
}

variable "base_capacity" {
  description = "Base capacity of the workgroup in RPUs (8-512, in steps of 8)."
  type        = number
  default     = 8
}

variable "max_capacity" {
  description = "Most RPUs the workgroup may scale to; caps the cost of a burst of loads."
  type        = number
  default     = 32
}

variable "processed_bucket_arn" {
  description = "ARN of the processed bucket, the only bucket the COPY role can read."
  type        = string
}

variable "create_s3_gateway_endpoint" {
  description = "Create an S3 gateway endpoint in the VPC. Enhanced VPC routing sends COPY traffic through the VPC, so it needs one (or a NAT) to reach the processed bucket."
  type        = bool
  default     = false
}

variable "route_table_ids" {
  description = "Route tables of the private subnets, for the S3 gateway endpoint (with create_s3_gateway_endpoint)."
  type        = list(string)
  default     = []
}
