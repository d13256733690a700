# Inputs of the model-service module.
#
# The first five are the GitOps desired state: each environment keeps them in
# envs/<env>/deploy.auto.tfvars.json and the canary controller rewrites that file
# (src/modelops/deploy/gitops.py holds the same key set and the same patterns).

variable "stable_image" {
  type        = string
  description = "Image of the stable track, pinned by digest: <registry>/<repository>[:tag]@sha256:<64 hex>."
  nullable    = false

  validation {
    condition     = can(regex("^(?:localhost|[a-z0-9-]+(?:[.][a-z0-9-]+)+)(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$", var.stable_image))
    error_message = "The stable_image must be a registry image pinned by digest, like ghcr.io/owner/repo@sha256:<64 lowercase hex>; a tag alone can move."
  }
}

variable "stable_model_version" {
  type        = string
  description = "MLflow registry version of the model baked into stable_image (shown as a pod label)."
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$", var.stable_model_version))
    error_message = "The stable_model_version must be 1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit."
  }
}

variable "canary_image" {
  type        = string
  description = "Image of the canary track, pinned by digest like stable_image; null when no canary is in progress."
  default     = null

  validation {
    condition     = var.canary_image == null || can(regex("^(?:localhost|[a-z0-9-]+(?:[.][a-z0-9-]+)+)(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$", var.canary_image))
    error_message = "The canary_image must be null or a registry image pinned by digest, like ghcr.io/owner/repo@sha256:<64 lowercase hex>."
  }
}

variable "canary_model_version" {
  type        = string
  description = "MLflow registry version of the model baked into canary_image; null exactly when canary_image is null."
  default     = null

  validation {
    condition     = var.canary_image == null ? var.canary_model_version == null : var.canary_model_version != null
    error_message = "Set canary_model_version together with canary_image, or leave both null."
  }

  validation {
    condition     = var.canary_model_version == null || can(regex("^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$", var.canary_model_version))
    error_message = "The canary_model_version must be 1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit."
  }
}

variable "canary_weight" {
  type        = number
  description = "Percent of requests (0..100) the HTTPRoute sends to the canary; 0 removes the canary pods."
  default     = 0
  nullable    = false

  validation {
    condition     = var.canary_weight >= 0 && var.canary_weight <= 100 && floor(var.canary_weight) == var.canary_weight
    error_message = "The canary_weight must be a whole number from 0 to 100."
  }

  validation {
    condition     = var.canary_weight == 0 || var.canary_image != null
    error_message = "A canary_weight above 0 needs a canary_image to send that traffic to."
  }
}

variable "canary_mirror_percent" {
  type        = number
  description = "Percent of requests (0..100) the HTTPRoute also copies to the canary, its answers discarded (the shadow phase); above 0 the canary pods run."
  default     = 0
  nullable    = false

  validation {
    condition     = var.canary_mirror_percent >= 0 && var.canary_mirror_percent <= 100 && floor(var.canary_mirror_percent) == var.canary_mirror_percent
    error_message = "The canary_mirror_percent must be a whole number from 0 to 100."
  }

  validation {
    condition     = var.canary_mirror_percent == 0 || var.canary_image != null
    error_message = "A canary_mirror_percent above 0 needs a canary_image to mirror to."
  }
}

# ---- Where and how the service runs -------------------------------------------

variable "name" {
  type        = string
  description = "Base name of every object; the tracks are <name>-stable and <name>-canary."
  default     = "model-service"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS label of at most 40 characters: lowercase letters, digits and '-', starting with a letter."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace to deploy into (it must exist; the envs create it)."

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace)) && var.namespace != "default"
    error_message = "The namespace must be a DNS label other than \"default\"."
  }
}

variable "environment" {
  type        = string
  description = "Environment name, passed to the service as MODELOPS_ENVIRONMENT and set as the pod label modelops.io/env."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.environment))
    error_message = "The environment must be 1-31 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "gateway" {
  type = object({
    name      = string
    namespace = string
  })
  description = "Gateway API Gateway the HTTPRoute attaches to (installed and run by the platform team)."
}

variable "hostnames" {
  type        = list(string)
  description = "Host names the HTTPRoute answers for."

  validation {
    condition     = length(var.hostnames) > 0 && alltrue([for h in var.hostnames : can(regex("^(?:[*][.])?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(?:[.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$", h))])
    error_message = "Give at least one hostname, each a lowercase DNS name (optionally starting with '*.')."
  }
}

variable "stable_autoscaling" {
  type = object({
    min_replicas           = number
    max_replicas           = number
    target_cpu_utilization = optional(number, 70)
  })
  description = "HorizontalPodAutoscaler bounds of the stable track (min_replicas is also the initial size)."
  default     = { min_replicas = 2, max_replicas = 6 }

  validation {
    condition     = var.stable_autoscaling.min_replicas >= 1 && var.stable_autoscaling.max_replicas >= var.stable_autoscaling.min_replicas && var.stable_autoscaling.target_cpu_utilization > 0 && var.stable_autoscaling.target_cpu_utilization <= 100
    error_message = "The stable_autoscaling needs 1 <= min_replicas <= max_replicas and 0 < target_cpu_utilization <= 100."
  }
}

variable "canary_autoscaling" {
  type = object({
    min_replicas           = number
    max_replicas           = number
    target_cpu_utilization = optional(number, 70)
  })
  description = "HorizontalPodAutoscaler bounds of the canary track while canary_weight > 0."
  default     = { min_replicas = 1, max_replicas = 6 }

  validation {
    condition     = var.canary_autoscaling.min_replicas >= 1 && var.canary_autoscaling.max_replicas >= var.canary_autoscaling.min_replicas && var.canary_autoscaling.target_cpu_utilization > 0 && var.canary_autoscaling.target_cpu_utilization <= 100
    error_message = "The canary_autoscaling needs 1 <= min_replicas <= max_replicas and 0 < target_cpu_utilization <= 100."
  }
}

variable "resources" {
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  description = "CPU and memory requests and limits of the model container (Kubernetes quantities)."
  default = {
    requests = { cpu = "250m", memory = "512Mi" }
    limits   = { cpu = "1", memory = "1Gi" }
  }

  validation {
    condition = alltrue([
      for q in [var.resources.requests.cpu, var.resources.requests.memory, var.resources.limits.cpu, var.resources.limits.memory] :
      can(regex("^[0-9]+(?:[.][0-9]+)?(?:m|k|M|G|T|Ki|Mi|Gi|Ti)?$", q))
    ])
    error_message = "Each of resources.requests/limits cpu and memory must be a Kubernetes quantity such as 250m, 1, 512Mi or 1Gi."
  }
}

variable "run_as_user" {
  type        = number
  description = "Numeric non-root UID (and GID) the container runs as; it must match the image's USER."
  default     = 10001

  validation {
    condition     = var.run_as_user >= 1000 && floor(var.run_as_user) == var.run_as_user
    error_message = "The run_as_user must be a whole number >= 1000 (a non-root, non-system UID)."
  }
}

variable "tmp_size_limit" {
  type        = string
  description = "Size limit of the writable /tmp emptyDir (Prometheus multiprocess files, temporary files, a prediction_log folder under /tmp); the kubelet evicts a pod that exceeds it."
  default     = "256Mi"
}

variable "prediction_log" {
  type        = string
  description = "Where the service writes its prediction log: \"-\" is stdout (for the cluster's log pipeline), a folder of day partitions must be under /tmp, \"\" turns it off."
  default     = "-"

  validation {
    condition     = contains(["-", ""], var.prediction_log) || can(regex("^/tmp/[^/]", var.prediction_log))
    error_message = "The prediction_log must be \"-\" (stdout), \"\" (off) or a folder under /tmp/, the only writable path."
  }
}

variable "pre_stop_sleep_seconds" {
  type        = number
  description = "Seconds a terminating pod keeps serving before SIGTERM, while endpoints update (needs a sleep binary in the image)."
  default     = 5

  validation {
    condition     = var.pre_stop_sleep_seconds >= 0 && var.pre_stop_sleep_seconds <= 10 && floor(var.pre_stop_sleep_seconds) == var.pre_stop_sleep_seconds
    error_message = "The pre_stop_sleep_seconds must be a whole number from 0 to 10 (the pod has 30 s to stop)."
  }
}

variable "extra_env" {
  type        = map(string)
  description = "More MODELOPS_* environment variables for the service; the ones the module sets itself are refused."
  default     = {}

  validation {
    condition = alltrue([
      for k in keys(var.extra_env) :
      can(regex("^MODELOPS_[A-Z0-9_]+$", k)) && !contains(["MODELOPS_ENVIRONMENT", "MODELOPS_IMAGE_TAG", "MODELOPS_TRACK", "MODELOPS_HOST", "MODELOPS_PORT", "MODELOPS_PREDICTION_LOG"], k)
    ])
    error_message = "The extra_env keys must look like MODELOPS_SOMETHING and must not be one the module sets: MODELOPS_ENVIRONMENT, _IMAGE_TAG, _TRACK, _HOST, _PORT, _PREDICTION_LOG."
  }
}

variable "image_pull_secrets" {
  type        = list(string)
  description = "Names of docker-registry Secrets in the namespace used to pull private images (e.g. from ghcr.io)."
  default     = []
}

variable "network_policy" {
  type        = bool
  description = "Admit traffic to the pods only from the gateway's namespace and metrics_namespaces. Turn off for gateways whose proxies run elsewhere (e.g. Cilium's node-level Envoy)."
  default     = true
}

variable "metrics_namespaces" {
  type        = list(string)
  description = "Namespaces (besides the gateway's) allowed to reach the pods, e.g. where Prometheus runs."
  default     = ["monitoring"]
}

variable "rollout_timeout" {
  type        = string
  description = "How long terraform waits for a Deployment rollout before the apply fails (Go duration, e.g. 10m)."
  default     = "10m"

  validation {
    condition     = can(regex("^[0-9]+(?:s|m|h)$", var.rollout_timeout))
    error_message = "The rollout_timeout must be a duration such as 300s, 10m or 1h."
  }
}

variable "labels" {
  type        = map(string)
  description = "Extra labels added to every object and pod."
  default     = {}
}
