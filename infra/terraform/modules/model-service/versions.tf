terraform {
  # 1.9: variable validations may refer to other variables (canary_weight -> canary_image).
  required_version = ">= 1.9.0"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.36.0, < 3.0.0"
    }
  }
}
