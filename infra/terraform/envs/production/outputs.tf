output "namespace" {
  description = "Namespace the model service runs in."
  value       = module.model_service.namespace
}

output "services" {
  description = "Service name per track."
  value       = module.model_service.services
}

output "deployments" {
  description = "Deployment name per live track."
  value       = module.model_service.deployments
}

output "route_name" {
  description = "Name of the HTTPRoute that splits traffic."
  value       = module.model_service.route_name
}

output "traffic_split" {
  description = "Images, model versions and weights made live by the last apply."
  value       = module.model_service.traffic_split
}
