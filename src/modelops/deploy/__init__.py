"""Deploys: the GitOps desired state (gitops), routers that move traffic (router), canary."""
