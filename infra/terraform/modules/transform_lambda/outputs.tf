output "function_name" {
  description = "Name of the transform function (feedline's lambda_function setting)."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the transform function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "failure_queue_arn" {
  description = "ARN of the queue receiving failed asynchronous invocations."
  value       = aws_sqs_queue.failures.arn
}

output "failure_queue_name" {
  description = "Name of the queue receiving failed asynchronous invocations."
  value       = aws_sqs_queue.failures.name
}

output "signing_profile_name" {
  description = "AWS Signer profile whose signatures the code signing config trusts."
  value       = aws_signer_signing_profile.this.name
}
