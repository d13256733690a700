"""The MLflow side: tracking settings, the one registry client, model export and sources.

Everything that reads or writes the tracking server goes through `RegistryClient`
(`open_registry(settings)` checks the server answers first). Reference distributions
travel with each model version (`reference`).
"""
