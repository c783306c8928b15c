output "queue_url" {
  description = "URL of the event queue (the SQS trigger's `sqs_queue`)."
  value       = aws_sqs_queue.events.id
}

output "queue_arn" {
  description = "ARN of the event queue; available only once the queue policy lets S3 send, so a bucket notification that uses it is created after the policy."
  value       = aws_sqs_queue.events.arn
  depends_on  = [aws_sqs_queue_policy.events]
}

output "queue_name" {
  description = "Name of the event queue."
  value       = aws_sqs_queue.events.name
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.id
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.name
}
