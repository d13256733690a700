# The model service on Kubernetes: a stable and a canary track, each a Deployment
# behind its own Service, and one Gateway API HTTPRoute that splits requests
# between the two Services by weight. See README.md in this folder.

locals {
  # The service contract (serving/): port 8000, /ready, /health, /metrics.
  container_port = 8000
  service_port   = 80

  # At weight 0 the canary runs no pods: its Deployment, autoscaler and
  # disruption budget are removed. Its Service stays so the route always resolves.
  canary_live = var.canary_weight > 0 || var.canary_mirror_percent > 0

  # The shadow phase: a copy of canary_mirror_percent of the requests goes to the canary
  # Service (Gateway API RequestMirror; the gateway discards its answers). The client's
  # X-Request-ID header travels with the copy, so both tracks log the same request id.
  mirror_filters = var.canary_mirror_percent > 0 ? [{
    type = "RequestMirror"
    requestMirror = {
      backendRef = {
        group = ""
        kind  = "Service"
        name  = local.tracks.canary.name
        port  = local.service_port
      }
      percent = var.canary_mirror_percent
    }
  }] : []

  common_labels = merge(var.labels, {
    "app.kubernetes.io/name"       = var.name
    "app.kubernetes.io/part-of"    = "modelops"
    "app.kubernetes.io/managed-by" = "terraform"
    "modelops.io/env"              = var.environment
  })

  tracks = {
    stable = {
      name          = "${var.name}-stable"
      image         = var.stable_image
      model_version = var.stable_model_version
      weight        = 100 - var.canary_weight
      autoscaling   = var.stable_autoscaling
    }
    canary = {
      name          = "${var.name}-canary"
      image         = var.canary_image
      model_version = var.canary_model_version
      weight        = var.canary_weight
      autoscaling   = var.canary_autoscaling
    }
  }

  # Tracks that run pods now.
  live_tracks = { for track, t in local.tracks : track => t if track == "stable" || local.canary_live }

  # Selector labels never change after creation (a Deployment's selector is immutable).
  selectors = {
    for track, t in local.tracks : track => {
      "app.kubernetes.io/name" = var.name
      "modelops.io/track"      = track
    }
  }

  # Prometheus kubernetes_sd relabelling turns the pod labels modelops.io/track and
  # modelops.io/env into the `track` and `env` target labels of the metrics contract.
  scrape_annotations = {
    "prometheus.io/scrape" = "true"
    "prometheus.io/port"   = tostring(local.container_port)
    "prometheus.io/path"   = "/metrics"
  }

  ingress_namespaces = distinct(concat([var.gateway.namespace], var.metrics_namespaces))
}

resource "kubernetes_service_account_v1" "model" {
  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.common_labels
  }

  # The service never calls the Kubernetes API.
  automount_service_account_token = false
}

resource "kubernetes_deployment_v1" "model" {
  for_each = local.live_tracks

  # checkov:skip=CKV_K8S_15:Images are pinned by digest (validated in variables.tf), so IfNotPresent can never run a different image; Always would only add a registry round-trip to every pod start.
  # checkov:skip=CKV_K8S_14:The image is var.stable_image or var.canary_image via for_each, which checkov cannot resolve; both variables only accept digest-pinned references (validation in variables.tf, tested by tests/unit/test_terraform_contract.py).
  # checkov:skip=CKV_K8S_43:Same as CKV_K8S_14: the image is always a <repo>@sha256:<digest> reference, enforced by the variable validation, which checkov does not evaluate through for_each.

  metadata {
    name      = each.value.name
    namespace = var.namespace
    labels    = merge(local.common_labels, local.selectors[each.key])
  }

  spec {
    # Initial size only: the HorizontalPodAutoscaler owns replicas afterwards
    # (see lifecycle.ignore_changes below).
    replicas                  = each.value.autoscaling.min_replicas
    revision_history_limit    = 5
    progress_deadline_seconds = 600

    selector {
      match_labels = local.selectors[each.key]
    }

    strategy {
      type = "RollingUpdate"

      rolling_update {
        max_surge       = "25%"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = merge(local.common_labels, local.selectors[each.key], {
          "modelops.io/model-version" = each.value.model_version
        })
        annotations = local.scrape_annotations
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.model.metadata[0].name
        automount_service_account_token  = false
        enable_service_links             = false
        termination_grace_period_seconds = 30

        security_context {
          run_as_non_root = true
          run_as_user     = var.run_as_user
          run_as_group    = var.run_as_user
          fs_group        = var.run_as_user

          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        dynamic "image_pull_secrets" {
          for_each = var.image_pull_secrets

          content {
            name = image_pull_secrets.value
          }
        }

        topology_spread_constraint {
          max_skew           = 1
          topology_key       = "kubernetes.io/hostname"
          when_unsatisfiable = "ScheduleAnyway"

          label_selector {
            match_labels = local.selectors[each.key]
          }
        }

        container {
          name              = "model"
          image             = each.value.image
          image_pull_policy = "IfNotPresent"

          port {
            name           = "http"
            container_port = local.container_port
            protocol       = "TCP"
          }

          # Listen where the probes and the Service look, whatever the image's defaults.
          env {
            name  = "MODELOPS_HOST"
            value = "0.0.0.0"
          }

          env {
            name  = "MODELOPS_PORT"
            value = tostring(local.container_port)
          }

          env {
            name  = "MODELOPS_ENVIRONMENT"
            value = var.environment
          }

          env {
            name  = "MODELOPS_TRACK"
            value = each.key
          }

          env {
            # The digest part of the image reference: sha256:<hex>.
            name  = "MODELOPS_IMAGE_TAG"
            value = split("@", each.value.image)[1]
          }

          env {
            name  = "MODELOPS_PREDICTION_LOG"
            value = var.prediction_log
          }

          dynamic "env" {
            for_each = var.extra_env

            content {
              name  = env.key
              value = env.value
            }
          }

          resources {
            requests = var.resources.requests
            limits   = var.resources.limits
          }

          # Loading the model can take a while; liveness only starts once this passes.
          startup_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds    = 2
            timeout_seconds   = 2
            failure_threshold = 60
          }

          liveness_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }

          readiness_probe {
            http_get {
              path = "/ready"
              port = "http"
            }
            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 2
          }

          # SIGTERM only after the endpoint is gone from the Service and the gateway, so a
          # rollout or a canary scale-down drops no request; then graceful shutdown.
          lifecycle {
            pre_stop {
              exec {
                command = ["sleep", tostring(var.pre_stop_sleep_seconds)]
              }
            }
          }

          security_context {
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            run_as_non_root            = true

            capabilities {
              drop = ["ALL"]
            }
          }

          # The only writable path: prediction log and Prometheus multiprocess files.
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "tmp"

          empty_dir {
            size_limit = var.tmp_size_limit
          }
        }
      }
    }
  }

  timeouts {
    create = var.rollout_timeout
    update = var.rollout_timeout
  }

  lifecycle {
    ignore_changes = [spec[0].replicas]
  }
}

resource "kubernetes_service_v1" "model" {
  for_each = local.tracks

  metadata {
    name      = each.value.name
    namespace = var.namespace
    labels    = merge(local.common_labels, local.selectors[each.key])
  }

  spec {
    type     = "ClusterIP"
    selector = local.selectors[each.key]

    port {
      name        = "http"
      port        = local.service_port
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "model" {
  for_each = local.live_tracks

  metadata {
    name      = each.value.name
    namespace = var.namespace
    labels    = merge(local.common_labels, local.selectors[each.key])
  }

  spec {
    min_replicas = each.value.autoscaling.min_replicas
    max_replicas = each.value.autoscaling.max_replicas

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.model[each.key].metadata[0].name
    }

    metric {
      type = "Resource"

      resource {
        name = "cpu"

        target {
          type                = "Utilization"
          average_utilization = each.value.autoscaling.target_cpu_utilization
        }
      }
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "model" {
  for_each = local.live_tracks

  metadata {
    name      = each.value.name
    namespace = var.namespace
    labels    = merge(local.common_labels, local.selectors[each.key])
  }

  spec {
    # Voluntary evictions (node drains) take one pod of a track at a time.
    max_unavailable = "1"

    selector {
      match_labels = local.selectors[each.key]
    }
  }
}

resource "kubernetes_network_policy_v1" "model" {
  count = var.network_policy ? 1 : 0

  metadata {
    name      = var.name
    namespace = var.namespace
    labels    = local.common_labels
  }

  spec {
    pod_selector {
      match_labels = { "app.kubernetes.io/name" = var.name }
    }

    policy_types = ["Ingress"]

    # Only the gateway (traffic) and the metrics namespaces (scrapes) reach port 8000.
    ingress {
      ports {
        port     = "http"
        protocol = "TCP"
      }

      dynamic "from" {
        for_each = local.ingress_namespaces

        content {
          namespace_selector {
            match_labels = { "kubernetes.io/metadata.name" = from.value }
          }
        }
      }
    }
  }
}

# Weighted routing: one rule, two backends. The route depends on the Deployments,
# so terraform moves traffic only after a new rollout is ready, and moves it away
# from the canary before the canary Deployment is removed.
resource "kubernetes_manifest" "route" {
  manifest = {
    apiVersion = "gateway.networking.k8s.io/v1"
    kind       = "HTTPRoute"
    metadata = {
      name      = var.name
      namespace = var.namespace
      labels    = local.common_labels
    }
    spec = {
      parentRefs = [{
        group     = "gateway.networking.k8s.io"
        kind      = "Gateway"
        name      = var.gateway.name
        namespace = var.gateway.namespace
      }]
      hostnames = var.hostnames
      rules = [{
        matches = [{
          path = { type = "PathPrefix", value = "/" }
        }]
        filters = local.mirror_filters
        backendRefs = [
          for track in ["stable", "canary"] : {
            group  = ""
            kind   = "Service"
            name   = kubernetes_service_v1.model[track].metadata[0].name
            port   = local.service_port
            weight = local.tracks[track].weight
          }
        ]
      }]
    }
  }

  depends_on = [kubernetes_deployment_v1.model]
}
