"""The model service: FastAPI app factory, fast predictor, metrics and prediction log.

Nothing happens at import time; `serving.app.create_app` builds an app from
`serving.settings.ServeSettings`, and `python -m serving` runs it with workers.
"""
