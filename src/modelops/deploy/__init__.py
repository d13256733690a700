"""Deploys: the GitOps desired state (gitops), routers that move traffic (router), the canary
controller (state machine, analysis, promoter) and the local rehearsal (local/)."""
