"""The local canary rehearsal: the production canary on one machine, with real processes.

Two model services (`python -m serving`: stable = champion, canary = challenger), a real nginx
splitting traffic between them by weight (`NginxRouter`, the local `Router`), a real
Prometheus scraping both with the repository's rules, and a load generator sending real
/predict requests through nginx. `LocalEnv` starts them under a run folder, re-attaches to
them (a controller that was killed and started again finds its environment still running,
as it would find a cluster), and tears them down.
"""
