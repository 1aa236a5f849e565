"""Reads over the jobs' models that more than one layer shows: where a queued job stands
and when a batch should finish (queue), and assets' download links (downloads). They write
nothing, so the API's representation (jobs.payloads) and the services both build on them.
"""
