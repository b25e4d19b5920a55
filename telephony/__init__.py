"""The call edge: Twilio in and out (`twilio/`, `audio/`), the pod's health (`pod_health/`),
campaigns, the admin API, the CLI and the Twilio simulator.

`pod.open_pod` is the composition root, the one place a pod is built; `app.py` only routes to
it. This package may import `agents`, `tools` and `db`; none of them imports it.
"""
