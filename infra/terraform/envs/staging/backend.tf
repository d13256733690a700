terraform {
  # Partial configuration: bucket, key, region and locking come from backend.hcl,
  # which you create from backend.hcl.example (see ../README.md). The canary
  # controller passes it to `terraform init` when the file exists.
  backend "s3" {}
}
