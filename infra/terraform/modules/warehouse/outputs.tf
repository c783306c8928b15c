output "namespace_name" {
  description = "Name of the Redshift Serverless namespace."
  value       = aws_redshiftserverless_namespace.this.namespace_name
}

output "workgroup_name" {
  description = "Name of the Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.this.workgroup_name
}

output "workgroup_arn" {
  description = "ARN of the Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.this.arn
}

output "endpoint_address" {
  description = "Host name of the workgroup endpoint (reachable from inside the VPC only)."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].address
}

output "endpoint_port" {
  description = "Port of the workgroup endpoint."
  value       = aws_redshiftserverless_workgroup.this.endpoint[0].port
}

output "database_name" {
  description = "Database created in the namespace."
  value       = aws_redshiftserverless_namespace.this.db_name
}

output "admin_username" {
  description = "Admin user of the namespace."
  value       = aws_redshiftserverless_namespace.this.admin_username
  sensitive   = true
}

output "admin_secret_arn" {
  description = "ARN of the Secrets Manager secret (managed by Redshift) holding the admin user name and password."
  value       = aws_redshiftserverless_namespace.this.admin_password_secret_arn
}

output "copy_role_arn" {
  description = "ARN of the role for `COPY ... IAM_ROLE` (also the namespace's default role, so `IAM_ROLE default` works)."
  value       = aws_iam_role.copy.arn
}

output "security_group_id" {
  description = "Security group of the workgroup."
  value       = aws_security_group.this.id
}
