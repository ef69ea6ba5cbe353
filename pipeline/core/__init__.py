"""The harness's foundations, imported by every other package and importing none of them:
angle conventions, the papers' metrics, user-facing errors, value types, where files live,
atomic writes."""
