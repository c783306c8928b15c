output "topic_arn" {
  description = "ARN of the alarm topic; feedline's notifiers and other alarms can publish to it too."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.lambda_errors.alarm_name,
      aws_cloudwatch_metric_alarm.lambda_throttles.alarm_name,
      aws_cloudwatch_metric_alarm.events_oldest_message.alarm_name,
    ],
    [for alarm in aws_cloudwatch_metric_alarm.dead_letter_messages : alarm.alarm_name],
    aws_cloudwatch_metric_alarm.redshift_compute[*].alarm_name,
  )
}
