"""Call recordings: the agent's track as the caller heard it, beside the caller's, streamed to storage.

`as_heard` models what Twilio holds and plays; `wav` the file's header; `writer` the bounded,
chunked upload that never blocks the call; `recorder` one call's recording and the pod's recorders;
`s3_store` the recordings in an S3-compatible bucket instead of GridFS, its requests signed by `sigv4`.
"""
