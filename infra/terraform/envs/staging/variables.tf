# GitOps desired state: set by deploy.auto.tfvars.json in this folder (terraform
# loads it automatically); the canary controller rewrites that file and applies.
# The module validates these values.

variable "stable_image" {
  type        = string
  description = "Image of the stable track, pinned by digest (ghcr.io/owner/repo@sha256:<64 hex>)."
}

variable "stable_model_version" {
  type        = string
  description = "MLflow registry version of the model in stable_image."
}

variable "canary_image" {
  type        = string
  description = "Image of the canary track, pinned by digest; null when no canary is in progress."
  default     = null
}

variable "canary_model_version" {
  type        = string
  description = "MLflow registry version of the model in canary_image; null with canary_image."
  default     = null
}

variable "canary_weight" {
  type        = number
  description = "Percent of requests (0..100) sent to the canary."
}

variable "canary_mirror_percent" {
  type        = number
  description = "Percent of requests (0..100) copied to the canary in the shadow phase (answers discarded)."
}

# ---- Cluster access and routing (override with TF_VAR_* or a *.tfvars file) ----

variable "kubeconfig_path" {
  type        = string
  description = "Path to a kubeconfig; null falls back to the KUBE_CONFIG_PATH environment variable."
  default     = null
}

variable "kube_context" {
  type        = string
  description = "kubeconfig context to use; null uses the current context."
  default     = null
}

variable "gateway" {
  type = object({
    name      = string
    namespace = string
  })
  description = "Gateway API Gateway the HTTPRoute attaches to."
  default     = { name = "public", namespace = "gateway-system" }
}

variable "image_pull_secrets" {
  type        = list(string)
  description = "docker-registry Secrets in the namespace for pulling private images."
  default     = []
}
