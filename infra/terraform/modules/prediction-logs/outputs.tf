output "bucket" {
  description = "Name of the log bucket (the shipper's destination)."
  value       = aws_s3_bucket.logs.id
}

output "bucket_arn" {
  description = "ARN of the log bucket, for the shipper's and the monitor's IAM policies."
  value       = aws_s3_bucket.logs.arn
}

output "logs_url" {
  description = "What PREDICTION_LOGS_URL points at: the bucket root (one prefix per environment below)."
  value       = "s3://${aws_s3_bucket.logs.id}/"
}

output "retention_days" {
  description = "Days after which a log object expires."
  value       = var.retention_days
}
