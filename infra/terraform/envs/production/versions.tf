terraform {
  # 1.10: the S3 backend locks with a lock file next to the state (use_lockfile).
  required_version = ">= 1.10.0"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.36"
    }
  }
}
