# `terraform test` of the example environment with a mocked AWS provider: the real provider schema and
# argument validation, Terraform's own evaluation (for_each, preconditions, module wiring), no AWS calls.
# Computed ARNs are mocked in ARN shape because the provider validates them.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_prefix_list" {
    defaults = { id = "pl-6da54004" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:111122223333:key/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock-bucket" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:111122223333:mock" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:111122223333:mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/mock" }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::111122223333:policy/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:111122223333:log-group:mock" }
  }
  mock_resource "aws_signer_signing_profile" {
    defaults = {
      arn         = "arn:aws:signer:eu-west-1:111122223333:/signing-profiles/mock"
      version_arn = "arn:aws:signer:eu-west-1:111122223333:/signing-profiles/mock/abcdefghij"
    }
  }
  mock_resource "aws_lambda_code_signing_config" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:code-signing-config:csc-0123456789abcdef0" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:111122223333:function:mock" }
  }
  mock_resource "aws_redshiftserverless_namespace" {
    defaults = { admin_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:mock" }
  }
  mock_resource "aws_redshiftserverless_workgroup" {
    defaults = {
      arn      = "arn:aws:redshift-serverless:eu-west-1:111122223333:workgroup/mock"
      endpoint = [{ address = "mock.111122223333.eu-west-1.redshift-serverless.amazonaws.com", port = 5439 }]
    }
  }
}

variables {
  region                              = "eu-west-1"
  environment                         = "test"
  feeds                               = { orders = "orders/", invoices = "incoming/invoices/" }
  lambda_artifact_key                 = "transform/feedline-transform-arm64-test.zip"
  vpc_id                              = "vpc-0123456789abcdef0"
  private_subnet_ids                  = ["subnet-0a", "subnet-0b", "subnet-0c"]
  private_route_table_ids             = ["rtb-0a"]
  create_s3_gateway_endpoint          = true
  redshift_allowed_security_group_ids = ["sg-0a"]
  alarm_email_addresses               = ["oncall@example.com"]
  airflow_role_name                   = "airflow"
}

run "example_applies" {
  command = apply

  assert {
    condition     = output.raw_bucket == "feedline-test-raw-111122223333"
    error_message = "Bucket names are <project>-<environment>-<role>-<account id>; got ${output.raw_bucket}."
  }

  assert {
    condition     = output.feed_sources == { orders = "s3://feedline-test-raw-111122223333/orders/", invoices = "s3://feedline-test-raw-111122223333/incoming/invoices/" }
    error_message = "Each feed's source is s3://<raw bucket>/<its prefix>; got ${jsonencode(output.feed_sources)}."
  }

  assert {
    condition     = output.lake_uris["archive"] == "s3://feedline-test-archive-111122223333"
    error_message = "Lake areas are bucket roots; got ${jsonencode(output.lake_uris)}."
  }

  assert {
    condition     = output.redshift_dsn == "redshift://mock.111122223333.eu-west-1.redshift-serverless.amazonaws.com:5439/feedline"
    error_message = "The DSN is redshift://<endpoint>:<port>/<database>; got ${output.redshift_dsn}."
  }
}

run "subnets_in_fewer_than_three_zones_are_rejected" {
  command = plan

  variables {
    private_subnet_ids = ["subnet-0a", "subnet-0b"]
  }

  expect_failures = [var.private_subnet_ids]
}
