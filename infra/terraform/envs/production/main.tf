# Production: several stable replicas spread over nodes; canaries start small.

locals {
  environment = "production"
  hostnames   = ["models.example.com"]

  stable_autoscaling = { min_replicas = 3, max_replicas = 12 }
  canary_autoscaling = { min_replicas = 1, max_replicas = 6 }
  resources = {
    requests = { cpu = "500m", memory = "1Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig_path
  config_context = var.kube_context
}

resource "kubernetes_namespace_v1" "model" {
  metadata {
    name = "modelops-${local.environment}"
    labels = {
      "modelops.io/env" = local.environment
      # The pods meet the "restricted" Pod Security Standard; enforce it.
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    }
  }
}

module "model_service" {
  source = "../../modules/model-service"

  name        = "credit-scoring"
  namespace   = kubernetes_namespace_v1.model.metadata[0].name
  environment = local.environment

  stable_image          = var.stable_image
  stable_model_version  = var.stable_model_version
  canary_image          = var.canary_image
  canary_model_version  = var.canary_model_version
  canary_weight         = var.canary_weight
  canary_mirror_percent = var.canary_mirror_percent

  gateway            = var.gateway
  hostnames          = local.hostnames
  image_pull_secrets = var.image_pull_secrets
  stable_autoscaling = local.stable_autoscaling
  canary_autoscaling = local.canary_autoscaling
  resources          = local.resources
}
