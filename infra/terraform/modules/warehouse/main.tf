# Redshift Serverless in private subnets: KMS-encrypted namespace with a Redshift-managed admin secret,
# a workgroup with enhanced VPC routing and no public endpoint, and the role COPY uses.

data "aws_region" "current" {}

locals {
  namespace_name = "${var.name_prefix}-namespace"
  log_exports    = ["connectionlog", "userlog", "useractivitylog"]
}

# Redshift exports audit logs into these groups when they exist (otherwise it creates them with no
# retention and no KMS key).
resource "aws_cloudwatch_log_group" "audit" {
  for_each = toset(local.log_exports)

  name              = "/aws/redshift/${local.namespace_name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_redshiftserverless_namespace" "this" {
  namespace_name = local.namespace_name
  db_name        = var.database_name
  admin_username = var.admin_username

  manage_admin_password            = true
  admin_password_secret_kms_key_id = var.kms_key_arn
  kms_key_id                       = var.kms_key_arn

  iam_roles            = [aws_iam_role.copy.arn]
  default_iam_role_arn = aws_iam_role.copy.arn
  log_exports          = local.log_exports

  depends_on = [aws_cloudwatch_log_group.audit]
}

resource "aws_redshiftserverless_workgroup" "this" {
  workgroup_name = "${var.name_prefix}-workgroup"
  namespace_name = aws_redshiftserverless_namespace.this.namespace_name

  base_capacity = var.base_capacity
  max_capacity  = var.max_capacity
  port          = var.port

  subnet_ids           = var.subnet_ids
  security_group_ids   = [aws_security_group.this.id]
  publicly_accessible  = false
  enhanced_vpc_routing = true

  config_parameter {
    parameter_key   = "require_ssl"
    parameter_value = "true"
  }

  config_parameter {
    parameter_key   = "enable_user_activity_logging"
    parameter_value = "true"
  }
}

resource "aws_security_group" "this" {
  name        = "${var.name_prefix}-redshift"
  description = "Redshift Serverless workgroup of ${var.name_prefix}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_security_groups" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Redshift from ${each.value}"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "from_cidr_blocks" {
  for_each = toset(var.allowed_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "Redshift from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
  cidr_ipv4         = each.value
}

# With enhanced VPC routing COPY reaches S3 through the VPC: allow HTTPS to S3's prefix list only.
data "aws_prefix_list" "s3" {
  name = "com.amazonaws.${data.aws_region.current.name}.s3"
}

resource "aws_vpc_security_group_egress_rule" "to_s3" {
  security_group_id = aws_security_group.this.id
  description       = "COPY from the processed bucket over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_prefix_list.s3.id
}

resource "aws_vpc_endpoint" "s3" {
  count = var.create_s3_gateway_endpoint ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
}
