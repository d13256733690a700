"""Watching a served model: data drift (PSI, KS, chi-squared) on prediction logs, model
validation on fresh labels (concept drift), and the monitor workflow's issue body."""
