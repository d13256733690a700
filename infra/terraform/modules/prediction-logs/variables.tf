variable "bucket_name" {
  type        = string
  description = "Name of the bucket the log shipper copies the services' prediction-log partitions into (globally unique)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be 3 to 63 lower-case letters, digits, dots or hyphens."
  }
}

variable "retention_days" {
  type        = number
  description = "Days a log object is kept before it expires: the same number as monitor.retention_days in params.yaml."
  default     = 90

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "The retention_days must be a whole number of days, at least 1."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key that encrypts the logs at rest; null uses the account's AWS-managed S3 key (aws/s3)."
  default     = null
}

variable "access_log_bucket" {
  type        = string
  description = "Existing bucket that receives the S3 server access logs of the log bucket (who read or wrote which object)."
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}
