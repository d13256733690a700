output "namespace" {
  description = "Namespace the service runs in."
  value       = var.namespace
}

output "services" {
  description = "Service name per track (stable, canary); each listens on port 80."
  value       = { for track, svc in kubernetes_service_v1.model : track => svc.metadata[0].name }
}

output "deployments" {
  description = "Deployment name per live track; the canary is absent while canary_weight is 0."
  value       = { for track, d in kubernetes_deployment_v1.model : track => d.metadata[0].name }
}

output "route_name" {
  description = "Name of the Gateway API HTTPRoute that splits traffic."
  value       = kubernetes_manifest.route.manifest.metadata.name
}

output "traffic_split" {
  description = "What this apply made live: images, model versions and weights per track."
  value = {
    stable = {
      image         = var.stable_image
      model_version = var.stable_model_version
      weight        = local.tracks.stable.weight
    }
    canary = {
      image         = var.canary_image
      model_version = var.canary_model_version
      weight        = local.tracks.canary.weight
    }
  }
}

output "pod_selector" {
  description = "Labels shared by the pods of both tracks; add modelops.io/track=stable|canary for one track."
  value       = { "app.kubernetes.io/name" = var.name }
}
